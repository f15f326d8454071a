"""Course-building tools: lesson discovery, running the solutions notebooks, releasing student notebooks."""
