"""The demo page at ``/``: one static HTML file beside this module (no build step, nothing fetched from
elsewhere), which posts the chosen photo to ``/predict`` and draws the top-5 with bars."""
from pathlib import Path

PAGE_FILE = Path(__file__).with_name("page.html")
# The page's own inline script and style, and the photo's preview (a blob: URL); nothing from other origins.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "img-src 'self' blob:; connect-src 'self'")


def page_html():
    return PAGE_FILE.read_text(encoding="utf-8")
