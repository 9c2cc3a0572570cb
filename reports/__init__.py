"""Reports of a parity run: HTML, Markdown, JSON and plots rendered from a result document
("gradparity/2", or an older one read through ``core.results.upgrade``) alone, so a saved ``report.json`` can be rendered again. Importing this
package does not import matplotlib; rendering does."""

from gradparity.reports.schema import DocumentError, read_document, validate_bench, validate_check, validate_document
from gradparity.reports.write import OutputError, write_report

__all__ = ["DocumentError", "OutputError", "read_document", "validate_bench", "validate_check", "validate_document",
           "write_report"]
