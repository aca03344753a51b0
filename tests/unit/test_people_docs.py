"""docs/dashboard.md's role × action table is ``ALLOWED`` (and an API token's row ``MACHINE``).

The table is rendered here from the code, one row per ``Action`` in its order, one column per
``Role`` and the API token; the page must hold it as rendered, so neither can change without
the other. On a mismatch the failure prints the table to paste in.
"""

from __future__ import annotations

from pathlib import Path

from loyalty_worker.domain.access import ALLOWED, MACHINE, Action, Role

PAGE = Path(__file__).resolve().parents[2] / "docs" / "dashboard.md"
SECTION = "## People and roles"

# What each action is, in the page's words.
DESCRIBED = {
    Action.READ: "read the pages, their JSON twins and the masked CSV",
    Action.SEE_CONTACTS: "see full phone numbers and e-mail addresses on the pages",
    Action.REVIEW: "acknowledge, resolve, undo a discrepancy's review",
    Action.TRIGGER: "start a run (full, incremental, dry) and Sync Now",
    Action.EXPORT_CONTACTS: "download the enrollment CSV with full contact details",
    Action.MANAGE_PEOPLE: "grant and revoke roles, end a person's sessions",
}


def rendered_table() -> list[str]:
    """The table as ``ALLOWED`` and ``MACHINE`` make it."""
    columns = [*(ALLOWED[role] for role in Role), MACHINE]
    lines = [
        "| Action | " + " | ".join(f"`{role.value}`" for role in Role) + " | API token |",
        "| --- |" + " --- |" * len(columns),
    ]
    for action in Action:
        cells = ["yes" if action in allowed else "no" for allowed in columns]
        lines.append(f"| {DESCRIBED[action]} (`{action.value}`) | " + " | ".join(cells) + " |")
    return lines


def page_table() -> list[str]:
    """The first table under the section's heading, as written."""
    lines = PAGE.read_text().splitlines()
    start = lines.index(SECTION)
    table: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            table.append(line.strip())
        elif table:
            break
    return table


def test_every_action_is_described() -> None:
    assert set(DESCRIBED) == set(Action)


def test_the_page_table_is_allowed_and_machine() -> None:
    expected = rendered_table()
    assert page_table() == expected, (
        f"{PAGE.name}, {SECTION!r}: the table should read\n\n" + "\n".join(expected)
    )


def test_the_rendering_reads_the_code() -> None:
    """Spot checks, so that a rendering gone wrong cannot agree with a page gone wrong."""
    rows = {line.split(" | ")[0]: line for line in rendered_table()[2:]}
    contacts = rows["| see full phone numbers and e-mail addresses on the pages (`see_contacts`)"]
    trigger = rows["| start a run (full, incremental, dry) and Sync Now (`trigger`)"]
    assert contacts.endswith("| no | yes | yes | no |")
    assert trigger.endswith("| no | no | yes | yes |")
