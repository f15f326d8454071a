"""Feedback pages in which nothing a learner wrote can run.

nbconvert already shows raw HTML from Markdown cells and outputs as text (``SanitizeHTML``, ``sanitize_html``),
but renders Markdown links with any scheme: ``[x](javascript:...)`` becomes a live link. ``SafeHTMLExporter`` (the
exporter of ``generate_feedback``, set in ``grading/nbgrader_config.py``) renders Markdown with mistune's own URL
policy instead: ``javascript:``, ``vbscript:``, ``file:`` and ``data:`` (other than images) become
``#harmful-link``. ``unsafe_urls`` finds any that got through anyway; ``make feedback`` withholds such a page.
"""

import html
import re

from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

# A real tag (text shown as text is escaped: "&lt;a ...") and, in it, an attribute that holds a URL.
TAG = re.compile(r"""<[a-zA-Z][^\s/>]*(?:\s+[^\s=>]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*\s*/?>""")
URL_ATTRIBUTE = re.compile(r"""\s(?:href|src|xlink:href|action|formaction|poster|background|data)\s*=\s*
                               (?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE | re.VERBOSE)
SAFE_DATA = re.compile(r"data:image/(png|gif|jpeg|webp)[;,]", re.IGNORECASE)
BAD_SCHEMES = ("javascript:", "vbscript:", "data:", "file:")


class SafeHTMLExporter(HTMLExporter):
    """nbconvert's HTML exporter with Markdown links and images restricted to safe URL schemes."""

    @pass_context
    def markdown2html(self, context, source):
        cell = context.get("cell", {})
        renderer = IPythonRenderer(
            escape=False,
            allow_harmful_protocols=False,  # nbconvert's default is True
            attachments=cell.get("attachments", {}),
            embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options,
        )
        return MarkdownWithMath(renderer=renderer).render(source)

    def default_filters(self):
        yield from super().default_filters()
        yield ("markdown2html", self.markdown2html)


def unsafe_urls(page):
    """The URLs in ``page``'s attributes that would run script or load a document when followed."""
    found = []
    for match in (m for tag in TAG.finditer(page) for m in URL_ATTRIBUTE.finditer(tag.group())):
        raw = next(group for group in match.groups() if group is not None)
        url = re.sub(r"[\x00-\x20]+", "", html.unescape(raw)).lower()
        if url.startswith(BAD_SCHEMES) and not SAFE_DATA.match(url):
            found.append(raw[:80])
    return found
