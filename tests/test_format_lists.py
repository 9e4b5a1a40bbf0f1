"""Every list of dataset formats comes from the registry of dataset.formats (EXPORTERS / IMPORTERS): the commands
take their choices and help from it, and the README's command synopses name exactly the registered formats."""
import re
from pathlib import Path

from django.core.management import load_command_class

from dataset.formats import EXPORTERS, IMPORTERS

ROOT = Path(__file__).resolve().parent.parent


def synopsis_formats(command: str) -> list[str]:
    """The ``--format {a,b,...}`` list of ``manage.py COMMAND`` in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"manage\.py {command} \S+ --format \{{([a-z,]+)\}}", text)
    assert match, f"README has no synopsis of {command} with its --format list"
    return match.group(1).split(",")


def test_readme_synopses_name_every_registered_format_in_registry_order():
    assert synopsis_formats("export_snapshot") == list(EXPORTERS)
    assert synopsis_formats("import_labels") == list(IMPORTERS)


def test_the_commands_help_names_every_registered_format():
    for command, table in (("export_snapshot", EXPORTERS), ("import_labels", IMPORTERS)):
        help_text = load_command_class("curation", command).help
        for name, entry in table.items():
            assert f"{name} ({entry.description.rstrip('.')})" in help_text, (command, name)
