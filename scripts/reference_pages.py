"""The reference pages generated from the code, for the documentation site: the command line
(from the argparse parser), the case catalogue (``core/cases.py``), the registered deviations
(``core/deviations.py``) and the result document (``core/results.py`` and the shipped schemas).

MkDocs runs it as a hook (``hooks:`` in mkdocs.yml): ``on_files`` adds each page to the site
while it builds, so the pages are never committed and cannot drift from the code.
``python scripts/reference_pages.py DIR`` writes them into DIR as Markdown, to read or diff.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from mkdocs.plugins import event_priority

from gradparity import cli
from gradparity.arguments import with_default
from gradparity.backends import entry, plugins
from gradparity.core import cases, deviations, network, record, results
from gradparity.core.compare import tolerance
from gradparity.reports.schema import shipped_schemas

SUMMARY_PICTURE = Path(__file__).resolve().parent.parent / "reports" / "example" / "summary.png"
USAGE_WIDTH = 80  # the usage lines' width in their code block, which fits the page at 1280 px
TOLERANCES = "../explanation/tolerances.md"
WHY_DEVIATIONS = "../explanation/deviations.md"


# Markdown --------------------------------------------------------------------------------------

def escape(text: str) -> str:
    """Plain text (help, descriptions, causes) as Markdown that shows it as written."""
    return re.sub(r"([\\`*_\[\]{}|])", r"\\\1", text).replace("<", "&lt;")


def prose(text: str) -> str:
    """A docstring as Markdown paragraphs (its ``code`` spans kept), one line each."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in text.strip().split("\n\n"))


def quoted(source: str, docstring: str) -> str:
    """A module's docstring quoted, with where it comes from."""
    return f"`{source}` says:\n\n" + "\n>\n".join(f"> {paragraph}" for paragraph in prose(docstring).split("\n\n"))


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A Markdown table; the cells are Markdown already."""
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def facts(rows: list[tuple[str, str]]) -> str:
    """A list of ``**Name:** value`` items; the values are Markdown already."""
    return "\n".join(f"- **{name}:** {value}" for name, value in rows)


def code(text: str, language: str = "text") -> str:
    """A fenced code block, shown as written."""
    return f"```{language}\n{text.rstrip()}\n```"


def page(title: str, *sections: str) -> str:
    """A page: its title and its sections, a blank line apart."""
    return "\n\n".join([f"# {title}", *(section.strip("\n") for section in sections if section)]) + "\n"


def heading(level: int, text: str, anchor: str, label: str | None = None) -> str:
    """A heading with its anchor, and the shorter label the table of contents shows."""
    toc = f' data-toc-label="{label}"' if label else ""
    return f"{'#' * level} {text} {{ #{anchor}{toc} }}"


# The command line ------------------------------------------------------------------------------

def commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """``(name, parser, one-line help)`` of the program (name ``gradparity``) and each subcommand."""
    yield parser.prog, parser, ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                yield name, subparser, summaries[name]


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's arguments and options, its subcommands left out."""
    return [action for action in parser._actions if not isinstance(action, argparse._SubParsersAction)]


def option_id(command: str, action: argparse.Action) -> str:
    """The anchor of an option on the command-line page: ``run--backends`` (its first long
    option string), ``check-target`` (an argument: its name)."""
    strings = action.option_strings
    if not strings:
        return f"{command}-{action.dest}"
    return command + next((text for text in strings if text.startswith("--")), strings[0])


def cli_page(parser: argparse.ArgumentParser | None = None) -> str:
    """The command line: every subcommand with its description, usage, options and examples."""
    parser = parser or cli.build_parser()
    sections = [command_section(name, each, summary) for name, each, summary in commands(parser)]
    return page("Command line", "Generated from `gradparity.cli.build_parser()`: what `gradparity COMMAND --help` "
                "says, one option at a time.", command_table(parser), *sections, exit_section())


def command_table(parser: argparse.ArgumentParser) -> str:
    """The subcommands, each linked to its section, with its one-line help."""
    rows = [(f"[`{name}`](#{name})", escape(summary)) for name, _, summary in list(commands(parser))[1:]]
    return table(("Command", "What it does"), rows)


def command_section(name: str, parser: argparse.ArgumentParser, summary: str) -> str:
    """One command: heading, description, usage, option groups and examples."""
    parts = [heading(2, f"`{parser.prog}`", name, parser.prog), escape(parser.description or summary),
             code(usage(parser))]
    parts += [group_section(name, group, parser) for group in parser._action_groups if group_actions(group)]
    if parser.epilog:
        title, _, lines = parser.epilog.partition("\n")
        parts += [f"**{escape(title.rstrip(':').capitalize())}**", code(dedent(lines), "sh")]
    return "\n\n".join(parts)


def usage(parser: argparse.ArgumentParser) -> str:
    """The usage lines ``--help`` prints, at ``USAGE_WIDTH`` columns."""
    formatter = parser.formatter_class(prog=parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help()


def dedent(lines: str) -> str:
    """The example lines without their indent."""
    return "\n".join(line.strip() for line in lines.splitlines())


def group_actions(group: argparse._ArgumentGroup) -> list[argparse.Action]:
    """The options of an argparse group, subcommands left out."""
    return [action for action in group._group_actions if not isinstance(action, argparse._SubParsersAction)]


def group_section(command: str, group: argparse._ArgumentGroup, parser: argparse.ArgumentParser) -> str:
    """One argparse group of a command: its title and each option as a definition."""
    title = group.title or "options"
    short = title.split(":")[0]
    items = "\n".join(option_item(command, action, parser) for action in group_actions(group))
    return (heading(3, escape(title[0].upper() + title[1:]), f"{command}-{short.split()[0]}", short.capitalize())
            + f"\n\n<dl markdown>\n{items}\n</dl>")


def option_item(command: str, action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    """An option as a definition: its invocation (linked to its own anchor), help with the
    default, choices, and the options it excludes."""
    anchor = option_id(command, action)
    invocation = parser.formatter_class(prog=parser.prog)._format_action_invocation(action)
    notes = [escape(with_default(action))]
    if action.choices:
        notes.append("Choices: " + ", ".join(f"`{choice}`" for choice in action.choices) + ".")
    if isinstance(action, argparse._AppendAction):
        notes.append("Repeatable.")
    excluded = list(exclusions(action, parser))
    if excluded:
        notes.append(f"Not with {', '.join(excluded)}.")
    text = "\n\n".join(notes)
    return f'<dt id="{anchor}" markdown="span">[`{invocation}`](#{anchor})</dt>\n<dd markdown="block">\n{text}\n</dd>'


def exclusions(action: argparse.Action, parser: argparse.ArgumentParser) -> Iterator[str]:
    """The options that a mutually exclusive group of ``action`` excludes, as code spans."""
    for group in parser._mutually_exclusive_groups:
        if action in group._group_actions:
            yield from (f"`{other.option_strings[0]}`" for other in group._group_actions if other is not action)


BAD_INPUT = ("Bad usage or input — a shape mismatch, NaN in the data, labels outside [0, 1], an unknown name, a "
             "non-positive learning rate or timeout, an empty hidden size as in `--hidden 4,,2`, a missing file — is "
             "one line on stderr, `gradparity: error: ...`, and exit status 2, never a traceback. Output paths "
             "(`--json`, `--out`, `--plot`) are checked before any work starts, and an option that a `--case` fixes "
             "(`--hidden`, `--activation`, ...) is refused rather than ignored.")


def exit_section() -> str:
    """The exit statuses the command line defines (``EXIT_*`` in ``gradparity/cli.py``)."""
    statuses = {name: value for name, value in vars(cli).items() if name.startswith("EXIT_") and isinstance(value, int)}
    rows = [(str(value), f"`{name}`") for name, value in statuses.items()]
    return "\n\n".join([heading(2, "Exit statuses", "exit-statuses"), escape(cli.EXIT_STATUSES) + " Each command's "
                        "description above says which of them it uses.", table(("Status", "Name in the code"), rows),
                        BAD_INPUT])


# The case catalogue ----------------------------------------------------------------------------

def catalogue_page() -> str:
    """Every catalogue case, built in the first dtype: network, data, initialisation, training
    and tolerance overrides."""
    built = {name: make(network.DTYPES[0]) for name, make in cases.CATALOGUE.items()}
    rows = [(f"[`{name}`](#{name})", f"`{case.spec.describe()}`", str(case.m), case.training.optimizer,
             str(case.steps)) for name, case in built.items()]
    intro = (f"Generated from `CATALOGUE` in `core/cases.py`. `gradparity run` runs every case in each dtype "
             f"({', '.join(f'`{dtype}`' for dtype in network.DTYPES)}); `--case NAME` picks cases.")
    return page("Case catalogue", intro, table(("Case", "Network", "m", "Optimizer", "Steps"), rows),
                *(case_section(case, cases.CATALOGUE[name]) for name, case in built.items()))


def case_section(case: cases.Case, make: Callable[[str], cases.Case]) -> str:
    """One case: its description and a line per part of its set-up."""
    spec = case.spec
    rows = [("Network", f"layers `{'-'.join(map(str, spec.layer_sizes))}`, hidden `{spec.hidden_activation}`, "
                        f"output `{spec.output_activation}`, loss `{spec.loss}`")]
    rows += set_up(case, make)
    rows += [("Training", escape(case.training.describe())), ("Steps", str(case.steps)),
             ("Tolerance", tolerance_overrides(case))]
    return "\n\n".join([heading(2, f"`{case.name}`", case.name, case.name), escape(case.description), facts(rows)])


def set_up(case: cases.Case, make: Callable[[str], cases.Case]) -> list[tuple[str, str]]:
    """Data and initialisation: declared by a ``DatasetCase``, else said by its builder's docstring."""
    if isinstance(make, cases.DatasetCase):
        return [("Data", f"`{make.dataset}`, m = {case.m}"), ("Initialisation", f"`{make.init}`")]
    built = prose(make.__doc__ or "set up in code: `core/cases.py`").replace("\n\n", " ")
    return [("Data", f"m = {case.m}"), ("Set-up", built)]


def tolerance_overrides(case: cases.Case) -> str:
    """The case's rtol overrides with the reason a report gives, or that it has none."""
    if not case.tolerance:
        return f"the [policy's]({TOLERANCES}) for every quantity (no override)"
    return "; ".join(f"{kind}: {escape(tolerance(kind, case.dtype, case.spec, case.m, override=rtol).reason)}"
                     for kind, rtol in case.tolerance.items())


# The registered deviations ---------------------------------------------------------------------

def deviations_page() -> str:
    """Every registered deviation: where it applies, its operations, cause, bounds and measurement."""
    from_plugins = [deviation for name in plugins() for deviation in entry(name).deviations]
    entries = [*deviations.KNOWN_DEVIATIONS, *from_plugins]
    rows = [(f"[`{entry.name}`](#{entry.name})", f"`{entry.backend}`", f"`{entry.case}`", f"`{entry.dtype}`")
            for entry in entries]
    intro = (f"Generated from `KNOWN_DEVIATIONS` in `core/deviations.py` and the deviations the installed "
             f"plugins register (`BackendEntry.deviations`: {len(from_plugins)} here). "
             f"[Why the registered deviations happen]({WHY_DEVIATIONS}) explains each.\n\n"
             + quoted("core/deviations.py", deviations.__doc__ or ""))
    return page("Registered deviations", intro, table(("Deviation", "Backend", "Cases", "Dtypes"), rows),
                *(deviation_section(entry) for entry in entries))


def deviation_section(entry: deviations.KnownDeviation) -> str:
    """One registered deviation: its cause, where it applies, its bounds, the measurement and
    what a run says once it no longer occurs."""
    rows = [("Backend", f"`{entry.backend}`"), ("Cases", f"`{entry.case}`"), ("Dtypes", f"`{entry.dtype}`"),
            ("Optimizers", ", ".join(f"`{name}`" for name in entry.optimizers) or "any"),
            ("Operations", ", ".join(f"`{op}`" for op in entry.ops)), ("Bounds", bounds(entry)),
            ("Measured", escape(entry.measured.rstrip(".")) + ".")]
    stale = ("**Stale.** When its operations probe clean wherever it applies, a run marks it `stale` and says:\n\n"
             f"> {escape(deviations.stale_hint(entry))}")
    return "\n\n".join([heading(2, f"`{entry.name}`", entry.name, entry.name), escape(entry.cause), facts(rows), stale])


def bounds(entry: deviations.KnownDeviation) -> str:
    """What the entry explains (``KnownDeviation.explains``): a failed check within its
    quantity's bound, or within the tolerance of ``within``; any other failed check fails."""
    said = []
    if entry.bounds:
        each = ", ".join(f"`{pattern}` {'any' if bound == float('inf') else f'≤ {bound:g}'}"
                         for pattern, bound in entry.bounds)
        said.append(f"a failed check is a known deviation while its relative error is within its quantity's "
                    f"bound (the first pattern that matches counts): {each}.")
    if entry.within:
        covered = ", ".join(f"`{pattern}`" for pattern in entry.covers)
        said.append(f"{'A' if said else 'a'} failed check of {'any other' if entry.bounds else 'a'} quantity "
                    f"matching {covered} is one while it stays within the `{entry.within}` tolerance.")
    return " ".join(said + ["Any other failed check fails."])


# The result document ---------------------------------------------------------------------------

def records() -> dict[str, type[record.Record]]:
    """The record types of ``core/results.py``, by name."""
    return {name: kind for name, kind in vars(results).items()
            if isinstance(kind, type) and issubclass(kind, record.Record) and kind is not record.Record}


READING = ("Any JSON Schema validator checks a document against these files; `gradparity.validate_document` "
           "does, and also checks what a schema cannot say (the summary counts the statuses, decision-boundary "
           "grids are whole). Everything that changes between two identical runs — timings and the date — lives "
           "under `run`, so two runs with the same options give the same document once `run` is removed. "
           "`gradparity run --json FILE` and `report.json` hold a `Document`; `gradparity.run` returns it typed.")


def result_document_page() -> str:
    """Each shipped document and every record type in it: docstring and a table of its fields."""
    schemas = shipped_schemas()
    rows = [(f"`schemas/{name}`", f"`{schema['properties']['schema']['const']}`",
             f"[`{top_record(schema)}`](#{top_record(schema).lower()})") for name, schema in schemas.items()]
    intro = ("Generated from the JSON Schemas gradparity ships in `schemas/` (`gradparity.reports.schema."
             "shipped_schemas()`), which the types of `core/results.py` generate. A field that is not required "
             "reads as its default when a document lacks it.\n\n" + quoted("core/results.py", results.__doc__ or "")
             + "\n\n" + READING)
    shown: set[str] = set()
    return page("Result document", intro, table(("Schema file", "`schema`", "Record"), rows),
                *(document_section(schema, shown) for schema in schemas.values()))


def top_record(schema: dict) -> str:
    """The name of the record type a document's schema describes (its description is that
    type's docstring)."""
    return next(name for name, kind in records().items() if prose(kind.__doc__ or "") == schema["description"])


def document_section(schema: dict, shown: set[str]) -> str:
    """A document: its top record, then each record type it holds that no earlier one showed."""
    name = top_record(schema)
    parts = [record_section(name, schema, 2, f"`{name}`: {schema['title']}")]
    parts += [record_section(kind, definition, 3, f"`{kind}`")
              for kind, definition in schema["$defs"].items() if kind not in shown]
    shown.update(schema["$defs"])
    return "\n\n".join(parts)


def record_section(name: str, schema: dict, level: int, title: str) -> str:
    """One record type: its docstring and a row per field (a description column where the
    schema describes one)."""
    required = set(schema["required"])
    rows = [(f"`{field}`", json_type(spec), "yes" if field in required else "no", describe(spec))
            for field, spec in schema["properties"].items()]
    header: tuple[str, ...] = ("Field", "Type", "Required", "Description")
    if not any(row[3] for row in rows):
        header, rows = header[:3], [row[:3] for row in rows]
    return "\n\n".join([heading(level, title, name.lower(), name), schema["description"], table(header, rows)])


def json_type(schema: dict) -> str:
    """A field's type as its JSON Schema says it, short: ``array of (number | null)``, a record linked."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[`{name}`](#{name.lower()})"
    if "anyOf" in schema:
        return " \\| ".join(json_type(each) for each in schema["anyOf"])
    if "const" in schema:
        return f'`"{schema["const"]}"`'
    if "enum" in schema:
        return "string (enum)"
    kinds = schema.get("type", "any")
    return " \\| ".join(kind + contents(schema, kind) for kind in (kinds if isinstance(kinds, list) else [kinds]))


def contents(schema: dict, kind: str) -> str:
    """What an array or a map holds: `` of TYPE``, in parentheses when TYPE is a choice."""
    inner = schema.get("items") if kind == "array" else schema.get("additionalProperties") if kind == "object" else None
    if not isinstance(inner, dict):
        return ""
    held = json_type(inner)
    return f" of ({held})" if "|" in re.sub(r"\(.*\)", "", held) else f" of {held}"


def describe(schema: dict) -> str:
    """What a field's schema says beyond its type: descriptions, the words of a vocabulary,
    the words a map's keys are."""
    inside = nested(schema)
    said = list(dict.fromkeys(escape(each["description"]) for each in inside if "description" in each))
    said += [f"one of {words(each)}" for each in inside if "enum" in each]
    said += [f"keys: {words(schema['propertyNames'])}"] if "propertyNames" in schema else []
    return "; ".join(said)


def nested(schema: dict) -> list[dict]:
    """The schema and those inside it (items, values, alternatives), not through a record."""
    inner = [schema.get("items"), schema.get("additionalProperties"), *schema.get("anyOf", [])]
    return [schema, *(each for part in inner if isinstance(part, dict) for each in nested(part))]


def words(schema: dict) -> str:
    """The words of an enum schema as code spans."""
    return ", ".join(f"`{word}`" for word in schema["enum"])


# MkDocs ----------------------------------------------------------------------------------------

PAGES: dict[str, Callable[[], str]] = {"reference/cli.md": cli_page, "reference/catalogue.md": catalogue_page,
                                       "reference/deviations.md": deviations_page,
                                       "reference/result-document.md": result_document_page}


@event_priority(100)  # before mkdocstrings' own on_config, which starts its handlers
def on_config(config):  # noqa: ANN001, ANN201  (MkDocs's hook signature)
    """MkDocs hook: point mkdocstrings (``reference/api.md``) at the installed package. The
    repository's ``gradparity/`` lacks ``core/``, ``backends/`` and ``reports/``, which install
    into it (pyproject.toml's package-dir), so the sources are read where they are installed."""
    spec = importlib.util.find_spec("gradparity.core")
    installed = Path(spec.origin if spec and spec.origin else "").parent.parent.parent
    config.plugins["mkdocstrings"].config.handlers.setdefault("python", {})["paths"] = [str(installed)]
    return config


def on_files(files, config):  # noqa: ANN001, ANN201  (MkDocs's hook signature)
    """MkDocs hook: add each generated page to the site's files, and the sample report's summary
    picture (``scripts/render_summary.py``) that the home page shows, as ``assets/summary.png``."""
    from mkdocs.structure.files import File

    for path, make in PAGES.items():
        files.append(File.generated(config, path, content=make()))
    files.append(File.generated(config, "assets/summary.png", abs_src_path=str(SUMMARY_PICTURE)))
    return files


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    for path, make in PAGES.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(make())
        print(f"wrote {target}")
