"""Bulk import of feedback from CSV or JSONL through the batch API, resumable.

    python -m ingest.importer feedback.csv --url http://127.0.0.1:8001 --api-key dev-key-change-me

Each row gets the idempotency key `import:<file sha-256 prefix>:<line>`, so sending a row twice
never stores it twice. After every batch the checkpoint file (`<FILE>.checkpoint.json`) records
the last completed line and the running summary; running the same command again skips what was
done. CSV columns: channel, text, customer_id, customer_tier, customer_email, customer_name,
customer_locale, subject, rating, language, external_id, thread_id, app_version, platform, region, product, nps,
csat; `metadata.<key>` columns and any other column go into `metadata`. JSONL lines are bodies
of `POST /v1/feedback`.
"""

import asyncio
import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, cast

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

DEFAULT_BATCH = 500
CUSTOMER_COLUMNS = {"customer_id": "id", "customer_tier": "tier", "customer_email": "email",
                    "customer_name": "name", "customer_locale": "locale", "customer_value": "value"}
FIELD_COLUMNS = ("channel", "text", "subject", "rating", "language", "external_id", "thread_id", "app_version",
                 "platform", "region", "product", "nps", "csat")
NUMBERS = {"rating": float, "nps": int, "csat": int, "value": float}
RETRY_DELAY_SECONDS = 0.5  # doubled after each failed attempt


class ImportAborted(Exception):
    """The server refused a whole batch or could not be reached; the checkpoint is kept for a resume."""


class BatchTooLarge(Exception):
    """413: the batch is over the server's body limit; it is sent again in halves."""


@dataclass
class Rejection:
    line: int
    status: int
    reason: str


@dataclass
class Summary:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    duplicate_reasons: dict[str, int] = field(default_factory=dict)
    resumed_from_line: int = 0
    last_line: int = 0

    @property
    def total(self) -> int:
        return self.accepted + self.duplicates + len(self.rejected)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Summary":
        rejected = [Rejection(**item) for item in data.get("rejected", [])]
        return cls(accepted=data.get("accepted", 0), duplicates=data.get("duplicates", 0), rejected=rejected,
                   duplicate_reasons=data.get("duplicate_reasons", {}), last_line=data.get("last_line", 0))


# --- reading ------------------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    item: dict[str, Any] | None  # None: unreadable, `error` says why
    error: str | None = None


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _number(value: str, kind: type) -> Any:
    try:
        return kind(value)
    except ValueError:
        return value  # sent as is: the server names the field in its answer


def csv_item(record: dict[str, str | None]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    customer: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for column, raw in record.items():
        if column is None or raw is None or raw.strip() == "":
            continue
        name = column.strip().lower()
        value = raw.strip() if name != "text" else raw
        if name in CUSTOMER_COLUMNS:
            key = CUSTOMER_COLUMNS[name]
            customer[key] = _number(value, NUMBERS[key]) if key in NUMBERS else value
        elif name in FIELD_COLUMNS:
            item[name] = _number(value, NUMBERS[name]) if name in NUMBERS else value
        else:
            metadata[name.removeprefix("metadata.")] = value
    item["customer"] = customer
    if metadata:
        item["metadata"] = metadata
    return item


def read_rows(path: Path) -> Iterator[Row]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield Row(number, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
                    continue
                if not isinstance(item, dict):
                    yield Row(number, None, "each line must be a JSON object")
                    continue
                yield Row(number, item)
        return
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            # The physical line the record ends on: stable across runs, and quoted newlines stay inside one row.
            if None in record:
                yield Row(reader.line_num, None, "more values than header columns")
                continue
            yield Row(reader.line_num, csv_item(record))


def count_rows(path: Path) -> int:
    return sum(1 for _ in read_rows(path))


# --- checkpoint ---------------------------------------------------------------------------------


def default_checkpoint(path: Path) -> Path:
    return path.with_name(path.name + ".checkpoint.json")


def load_checkpoint(checkpoint: Path, digest: str) -> Summary | None:
    if not checkpoint.exists():
        return None
    data = json.loads(checkpoint.read_text(encoding="utf-8"))
    if data.get("sha256") != digest:
        return None  # another file, or the file changed: its rows have other keys
    return Summary.from_json(data["summary"])


def save_checkpoint(checkpoint: Path, source: Path, digest: str, summary: Summary) -> None:
    temporary = checkpoint.with_name(checkpoint.name + ".tmp")
    temporary.write_text(json.dumps({"file": str(source), "sha256": digest, "last_line": summary.last_line,
                                     "summary": summary.to_json()}, indent=1), encoding="utf-8")
    os.replace(temporary, checkpoint)  # atomic: a crash leaves the old or the new checkpoint, never half


# --- sending ------------------------------------------------------------------------------------


def _reason(problem: dict[str, Any] | None) -> str:
    if not problem:
        return "rejected"
    errors = problem.get("errors") or []
    if errors:
        return "; ".join(f"{_column(error['field'])}: {error['message']}" for error in errors)
    return problem.get("detail") or problem.get("title") or "rejected"


def _column(field: str) -> str:
    """`body.items.3.customer.id` → `customer.id`: the row is already named by its line."""
    parts = field.split(".", 3)
    return parts[3] if len(parts) == 4 and parts[:2] == ["body", "items"] else field


async def _post_batch(client: httpx.AsyncClient, items: list[dict[str, Any]], attempts: int = 4) -> dict[str, Any]:
    delay = RETRY_DELAY_SECONDS
    for attempt in range(attempts):
        try:
            response = await client.post("/v1/feedback/batch", json={"items": items})
        except httpx.TransportError as exc:
            if attempt == attempts - 1:
                raise ImportAborted(f"cannot reach the ingest API: {exc!r}") from exc
        else:
            if response.status_code == 200:
                return response.json()
            if response.status_code == 413 and len(items) > 1:
                raise BatchTooLarge
            if response.status_code not in (429, 502, 503, 504) or attempt == attempts - 1:
                try:
                    detail = response.json().get("detail") or response.json().get("title")
                except ValueError:
                    detail = response.text[:200]
                raise ImportAborted(f"the ingest API answered {response.status_code}: {detail}")
        await asyncio.sleep(delay)
        delay *= 2
    raise ImportAborted("unreachable")


async def _send(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-item results of `items`, halving the batch for as long as the server finds it too large."""
    try:
        return (await _post_batch(client, items))["results"]
    except BatchTooLarge:
        middle = len(items) // 2
        return await _send(client, items[:middle]) + await _send(client, items[middle:])


async def run_import(path: Path, client: httpx.AsyncClient, *, batch_size: int = DEFAULT_BATCH,
                     checkpoint: Path | None = None, restart: bool = False,
                     on_progress: Callable[[int], None] | None = None) -> Summary:
    """Send every row of `path` not yet done through the batch API; answers the running summary
    (this run and the ones it resumes). Raises ImportAborted with the checkpoint saved."""
    checkpoint = checkpoint or default_checkpoint(path)
    digest = file_digest(path)
    summary = None if restart else load_checkpoint(checkpoint, digest)
    if summary is None:
        summary = Summary()
    summary.resumed_from_line = summary.last_line
    key_prefix = f"import:{digest[:16]}"

    pending: list[Row] = []

    async def flush() -> None:
        readable = [row for row in pending if row.item is not None]
        for row in pending:
            if row.item is None:
                summary.rejected.append(Rejection(row.line, 400, row.error or "unreadable"))
        if readable:
            # `readable` holds only the rows with an item (mypy cannot carry that narrowing over).
            results = await _send(client, [{**cast(dict[str, Any], row.item),
                                            "idempotency_key": f"{key_prefix}:{row.line}"} for row in readable])
            for row, result in zip(readable, results, strict=True):
                if result["status"] == "accepted":
                    summary.accepted += 1
                elif result["status"] == "duplicate":
                    summary.duplicates += 1
                    reason = result.get("duplicate_reason") or "duplicate"
                    summary.duplicate_reasons[reason] = summary.duplicate_reasons.get(reason, 0) + 1
                else:
                    problem = result.get("problem") or {}
                    summary.rejected.append(Rejection(row.line, problem.get("status", 422), _reason(problem)))
        summary.last_line = pending[-1].line
        save_checkpoint(checkpoint, path, digest, summary)
        if on_progress:
            on_progress(len(pending))
        pending.clear()

    for row in read_rows(path):
        if row.line <= summary.resumed_from_line:
            continue
        pending.append(row)
        if len(pending) >= batch_size:
            await flush()
    if pending:
        await flush()
    return summary


# --- command line -------------------------------------------------------------------------------

cli = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


def print_summary(console: Console, summary: Summary, shown: int = 50) -> None:
    if summary.resumed_from_line:
        console.print(f"Resumed after line {summary.resumed_from_line} (the counts include the earlier run).")
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(summary.duplicate_reasons.items()))
    console.print(f"[green]accepted {summary.accepted}[/]  [yellow]duplicates {summary.duplicates}"
                  f"{f' ({reasons})' if reasons else ''}[/]  [red]rejected {len(summary.rejected)}[/]  "
                  f"of {summary.total} rows")
    if summary.rejected:
        table = Table("line", "status", "reason", title="Rejected rows")
        for rejection in summary.rejected[:shown]:
            table.add_row(str(rejection.line), str(rejection.status), rejection.reason)
        console.print(table)
        if len(summary.rejected) > shown:
            console.print(f"… and {len(summary.rejected) - shown} more (see --report)")


@cli.command()
def main(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A .csv or .jsonl file.")],
    url: Annotated[str, typer.Option(help="The ingest service.")] = "http://127.0.0.1:8001",
    api_key: Annotated[str, typer.Option(envvar="CLOSEDLOOP_API_KEY", help="Sent as X-API-Key.")]
    = "dev-key-change-me",
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Rows per batch request.")] = DEFAULT_BATCH,
    checkpoint: Annotated[Path | None, typer.Option(help="Default: <FILE>.checkpoint.json")] = None,
    restart: Annotated[bool, typer.Option(help="Ignore the checkpoint (rows already sent answer as duplicates).")]
    = False,
    report: Annotated[Path | None, typer.Option(help="Write the full summary as JSON here.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per batch request.")] = 120.0,
) -> None:
    """Import FILE through POST /v1/feedback/batch, resumably, and print what was accepted,
    recorded as a duplicate or rejected (with the reason)."""
    console = Console()

    async def go() -> Summary:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": api_key}, timeout=timeout) as client:
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn(), console=console, transient=False) as progress:
                task = progress.add_task(f"importing {file.name}", total=count_rows(file))
                done_before = 0
                if not restart:
                    previous = load_checkpoint(checkpoint or default_checkpoint(file), file_digest(file))
                    if previous is not None:
                        done_before = sum(1 for row in read_rows(file) if row.line <= previous.last_line)
                progress.update(task, completed=done_before)
                return await run_import(file, client, batch_size=batch_size, checkpoint=checkpoint, restart=restart,
                                        on_progress=lambda n: progress.advance(task, n))

    try:
        summary = asyncio.run(go())
    except ImportAborted as exc:
        console.print(f"[red]Import stopped:[/] {exc}\nRun the same command again to resume.")
        raise typer.Exit(1) from None
    print_summary(console, summary)
    if report:
        report.write_text(json.dumps(summary.to_json(), indent=1), encoding="utf-8")


if __name__ == "__main__":
    cli()
