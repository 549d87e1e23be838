"""The page at `/`: the assessment `check` prints, as one self-contained HTML document.

Rendered on the server from the same `Assessment` as the text report, so the page and `check`
never disagree. No script, no external asset, no build step: one inline style sheet. Every
state is written out in words ("OK", "FAILING", "BLOCKED") in real tables; colour only repeats
what the words say, so the page reads the same in greyscale or on a text browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

from exporter.check.findings import (
    Assessment,
    ProbeView,
    SourceView,
    StatusPageView,
    TenantView,
)
from exporter.check.render import window_days
from exporter.fleet.derive import AgentView, summarise_by_version
from exporter.sla.derive import MonthToDate

HOSTS_SHOWN = 20
FAILURES_SHOWN = 10

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem 1.5rem;
color:#1b1b1b;background:#fff}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.2rem;margin:2rem 0 .4rem;
border-bottom:2px solid #444}h3{font-size:1rem;margin:1.2rem 0 .3rem}
table{border-collapse:collapse;margin:.3rem 0 .8rem;min-width:50%}
th,td{border:1px solid #999;padding:.2rem .5rem;text-align:left;vertical-align:top}
thead th{background:#eee}tbody th{font-weight:600;background:#f6f6f6;width:16rem}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.state{font-weight:700;padding:0 .3rem;border-left:.35rem solid #888}
.bad{border-color:#b00020}.warn{border-color:#b26a00}.good{border-color:#1b6e20}
.muted{color:#555}ul.findings li{margin:.15rem 0}nav a{margin-right:1rem}
code{font-size:.9em}
"""


def render_page(assessment: Assessment, version: str) -> bytes:
    now = assessment.now
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(_title(assessment))}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<header>",
        f"<h1>teleport-cloud-exporter {escape(version)}</h1>",
        f'<p class="muted">As of {_when(now)}. The same findings as '
        "<code>teleport-cloud-exporter check</code>.</p>",
        '<nav><a href="metrics">metrics</a><a href="healthz">healthz</a>'
        '<a href="readyz">readyz</a></nav>',
        "</header><main>",
        _summary(assessment),
    ]
    for tenant in assessment.tenants:
        parts.append(_tenant(tenant, now))
    if assessment.status_page is not None:
        parts.append(_status_page(assessment.status_page, now))
    parts.append("</main></body></html>\n")
    return "\n".join(parts).encode()


def _title(assessment: Assessment) -> str:
    if assessment.failures:
        return f"Could not collect {len(assessment.failures)} source(s): teleport-cloud-exporter"
    if assessment.findings:
        return f"{len(assessment.findings)} finding(s): teleport-cloud-exporter"
    return "Healthy: teleport-cloud-exporter"


def _summary(assessment: Assessment) -> str:
    out = ['<section id="summary"><h2>Summary</h2>']
    if not assessment.failures and not assessment.findings:
        out.append(f"<p>{_state('Healthy', 'good')}: no findings.</p>")
    if assessment.failures:
        out.append(
            f"<p>{_state('Could not collect', 'bad')} {len(assessment.failures)} source(s): "
            "the exporter cannot see everything.</p>"
        )
        out.append(_list(assessment.failures, "failures"))
    if assessment.findings:
        out.append(f"<p>{_state('Findings', 'warn')}: {len(assessment.findings)} to act on.</p>")
        out.append(_list((str(finding) for finding in assessment.findings), "findings"))
    out.append("</section>")
    return "\n".join(out)


def _tenant(tenant: TenantView, now: float) -> str:
    name = escape(tenant.name)
    out = [
        f'<section id="tenant-{name}">',
        f'<h2>Tenant {name} <span class="muted">({escape(tenant.proxy)})</span></h2>',
    ]
    fleet = tenant.fleet
    rows: list[tuple[str, str]] = [
        ("Proxy probe", _probe_now(tenant.probe)),
        (
            "Control plane",
            escape(tenant.control_plane or "unknown")
            + (f" (cluster {escape(tenant.cluster_name)})" if tenant.cluster_name else ""),
        ),
        ("Target agent version", escape(tenant.target_version or "unknown")),
        ("Next control-plane upgrade", _upgrade(tenant)),
    ]
    if tenant.tctl_version is not None:
        verdict = {
            True: _state("supported", "good"),
            False: _state("NOT supported", "bad"),
            None: "not judged yet",
        }[tenant.tctl_compatible]
        if tenant.tctl_one_behind:
            verdict = (
                f"{_state('one major behind', 'warn')} still supported; the next control-plane "
                "major drops it"
            )
        rows.append(("tctl", f"{escape(tenant.tctl_version)}: {verdict}"))
    if tenant.tools is not None:
        tools = tenant.tools
        note = ""
        if tools.majors_apart:
            note = (
                f"; the exporter's tctl {escape(tools.tctl or '')} is {tools.majors_apart} "
                "major(s) away from it"
            )
        elif tools.majors_apart == 0:
            note = f"; the exporter's tctl {escape(tools.tctl or '')} matches its major"
        rows.append(("Client tools wanted", f"tsh/tctl {escape(tools.wanted)}{note}"))
    if tenant.window is not None:
        window = tenant.window
        waiting = (
            f"; {window.waiting} unit/kube agent(s) behind the target wait for it "
            f"({window.waiting_blocking} blocking the next upgrade)"
            if window.waiting
            else ""
        )
        rows.append(
            (
                "Agent upgrade window",
                f"{window_days(window.weekdays)} at {window.start_hour:02d}:00 UTC, next opens "
                f"{_when(window.next_start)}{' (open now)' if window.open_now else ''}{waiting}",
            )
        )
    if fleet is not None:
        skew = ", ".join(f"{escape(k)} {v}" for k, v in fleet.by_skew.items())
        rows.append(("Agents", f"{fleet.total}: {skew}"))
        if tenant.size is not None:
            rows.append(("Fleet size", escape(tenant.size.line())))
        rows.append(
            ("Enrolment", ", ".join(f"{escape(k)} {v}" for k, v in tenant.enrolment.items()))
        )
        if fleet.outdated is not None and fleet.target_version:
            rows.append(
                (
                    "Outdated",
                    f"{fleet.outdated} agent(s) not on the target version "
                    f"{escape(fleet.target_version)}",
                )
            )
    else:
        rows.append(("Agents", "no inventory yet"))
    out.append(_facts(rows, "At a glance"))
    # Short sections first, so an outage's reason and the month's downtime are on the first
    # screen; the agent tables, which can be long, follow.
    out.append(_probe(tenant.probe))
    out.append(_sla(tenant.sla, now))
    if fleet is not None and fleet.upgrade_blocked:
        out.append(f"<h3>Agents that block the next upgrade ({len(fleet.blocking_agents)})</h3>")
        out.append(_agents(fleet.blocking_agents, "blocking"))
    out.append(_not_updating(tenant))
    out.append(_rollout(tenant))
    out.append(_sources(tenant.sources, now))
    out.append("</section>")
    return "\n".join(part for part in out if part)


def _probe_now(probe: ProbeView) -> str:
    last = probe.last
    if probe.state == "ok" and last is not None:
        expiry = (
            f"; certificate valid until {_when(last.cert_not_after)}" if last.cert_not_after else ""
        )
        return (
            f"{_state('OK', 'good')} in {last.duration * 1000:.0f} ms (HTTP {last.status_code})"
            f"{expiry}"
        )
    if probe.state == "failing":
        return f"{_state('FAILING', 'bad')} {escape(probe.error)}"
    if probe.state == "unobserved":
        return (
            f"{_state('NOT OBSERVED', 'warn')} {escape(probe.unobserved_reason or '')}: the "
            "exporter's own trouble, not counted as downtime"
        )
    return "not run yet"


def _upgrade(tenant: TenantView) -> str:
    fleet = tenant.fleet
    if tenant.upgrade == "blocked" and fleet is not None:
        versions = sorted({agent.version for agent in fleet.blocking_agents})
        shown = ", ".join(escape(v) for v in versions[:8])
        more = f" and {len(versions) - 8} more" if len(versions) > 8 else ""
        return (
            f"{_state('BLOCKED', 'bad')} Cloud cannot upgrade the control plane: "
            f"{len(fleet.blocking_agents)} agent(s) one or more majors behind, on {shown}{more}"
        )
    if tenant.upgrade == "not blocked":
        return (
            f"{_state('not blocked', 'good')} Cloud can upgrade it: every agent is on the "
            "control plane's major or newer"
        )
    return "unknown: the control-plane version or the inventory is not known yet"


def _not_updating(tenant: TenantView) -> str:
    fleet = tenant.fleet
    if fleet is None:
        return ""
    out = []
    total = sum(fleet.not_updating.values()) if fleet.not_updating is not None else 0
    if fleet.not_updating is not None and total:
        out.append(f"<h3>Agents that will not update by themselves ({total})</h3>")
        out.append(
            _table(
                ("reason", "agents"),
                ((escape(reason), _n(count)) for reason, count in fleet.not_updating.items()),
            )
        )
    frozen = tenant.frozen
    if frozen is not None and frozen.behind:
        out.append(
            f"<h3>Updater disabled or pinned, and behind ({len(frozen.behind)})</h3>"
            "<p>Run <code>teleport-update enable</code> or <code>unpin</code> on them.</p>"
        )
        out.append(_agents(frozen.behind, "frozen"))
    return "\n".join(out)


def _rollout(tenant: TenantView) -> str:
    rollout = tenant.rollout
    if rollout is None:
        return ""
    out = [
        "<h3>Managed Updates rollout</h3>",
        f"<p>{escape(rollout.start_version)} to {escape(rollout.target_version)}, mode "
        f"{escape(rollout.mode)}, strategy {escape(rollout.strategy)}, schedule "
        f"{escape(rollout.schedule)}.</p>",
    ]
    out += [f"<p>{escape(note)}</p>" for note in rollout.notes]
    out.append(
        _table(
            ("group", "state", "runs", "up to date", "agents by the inventory", "now"),
            (
                (
                    escape(g.name) + (" (catch-all)" if g.catch_all else ""),
                    escape(g.state),
                    escape(g.version),
                    f"{g.up_to_date} of {g.present}",
                    _n(g.members) if g.members is not None else "",
                    escape(g.why),
                )
                for g in rollout.groups
            ),
        )
    )
    for group in rollout.groups:
        if group.inventory_counts is not None:
            present, up_to_date = group.inventory_counts
            out.append(
                f"<p>{escape(group.name)}: the inventory gives {up_to_date} of {present} up to "
                "date for the agents Teleport counts (agents that joined in the last minute or "
                "records of agents gone differ).</p>"
            )
    merged = tenant.agent_report
    if merged is not None:
        left_out = ", ".join(
            f"{escape(reason)} {count}" for reason, count in sorted(merged.omitted.items())
        )
        stale = (
            f"; stale report(s) dropped: {escape(', '.join(merged.dropped))}"
            if merged.dropped
            else ""
        )
        out.append(
            f"<p>Teleport's agent reports: {sum(merged.agents.values())} agent(s) counted by "
            f"{len(merged.used)} Auth server(s) at {_when(merged.timestamp)}{stale}"
            + (f"; left out: {left_out}" if left_out else "")
            + ".</p>"
        )
    for stuck in tenant.stuck:
        out.append(
            f"<h3>Stuck in {escape(stuck.group)} ({len(stuck.agents)}): asked to update, not on "
            f"{escape(stuck.version)}</h3>"
        )
        out.append(_agents(stuck.agents, "stuck"))
    return "\n".join(out)


def _probe(probe: ProbeView) -> str:
    failures = list(probe.recent_failures)[-FAILURES_SHOWN:]
    out = ["<h3>Recent probe failures</h3>"]
    if not failures:
        out.append("<p>None since the exporter started.</p>")
        return "\n".join(out)
    out.append(
        _table(
            ("at (UTC)", "reason", "what was seen"),
            (
                (_when(f.at, seconds=True), escape(f.reason), escape(f.message))
                for f in reversed(failures)
            ),
        )
    )
    return "\n".join(out)


def _sla(month: MonthToDate | None, now: float) -> str:
    out = ["<h3>SLA month to date</h3>"]
    if month is None:
        out.append("<p>No ledger: nothing recorded yet.</p>")
        return "\n".join(out)
    s = month.summary
    elapsed = max(1.0, now - month.month_start)
    uptime = (
        "not measured: nothing observed yet"
        if s.uptime_ratio is None
        else f"{s.uptime_ratio * 100:.4f} % of observed time"
    )
    breached = _state("BREACHED", "bad") if s.breached else "no"
    out.append(
        _facts(
            [
                ("Objective", f"{s.objective * 100:g} %"),
                ("Downtime", f"{_duration(s.downtime)} of {_duration(s.budget)} budget"),
                ("Budget left", f"{s.budget_remaining_ratio * 100:.1f} %"),
                ("Uptime", uptime),
                ("Down in maintenance", _duration(s.maintenance)),
                (
                    "Observed",
                    f"{_duration(s.observed)}, {s.observed / elapsed:.0%} of the month so far",
                ),
                ("Breached", breached),
            ],
            None,
        )
    )
    if not month.intervals:
        out.append("<p>Down intervals: none this month.</p>")
        return "\n".join(out)
    out.append(
        _table(
            ("down from (UTC)", "to", "duration", "note"),
            (
                (
                    _when(i.start),
                    _when(i.end),
                    _duration(i.duration),
                    ("maintenance" + (", excluded" if i.excluded else ", counted"))
                    if i.in_maintenance
                    else "",
                )
                for i in month.intervals
            ),
        )
    )
    return "\n".join(out)


def _sources(sources: Sequence[SourceView], now: float) -> str:
    if not sources:
        return ""
    return "<h3>How fresh each source is</h3>\n" + _table(
        ("source", "state", "last success", "failures in a row", "last error"),
        (_source_row(source, now) for source in sources),
    )


def _source_row(source: SourceView, now: float) -> tuple[str, ...]:
    if source.up:
        state = _state("up", "good")
    elif source.last_success is None and source.consecutive_failures == 0:
        state = "not run yet"
    else:
        state = _state("DOWN", "bad")
    last = (
        f"{_when(source.last_success, seconds=True)} ({_age(now - source.last_success)} ago)"
        if source.last_success is not None
        else "never"
    )
    return (
        escape(source.kind),
        state,
        last,
        _n(source.consecutive_failures),
        escape(source.last_error or ""),
    )


def _status_page(page: StatusPageView, now: float) -> str:
    tone = {"none": "good", "minor": "warn", "maintenance": "warn"}.get(page.indicator, "bad")
    label = "OK" if page.indicator == "none" else page.indicator.upper()
    out = [
        '<section id="status-page">',
        f"<h2>Status page {escape(page.host)}</h2>",
        f"<p>{_state(label, tone)} {escape(page.description)}</p>",
        "<h3>Unresolved incidents</h3>",
    ]
    if page.incidents:
        out.append(
            _table(
                ("impact", "incident", "status"),
                ((escape(i.impact), escape(i.name), escape(i.status)) for i in page.incidents),
            )
        )
    else:
        out.append("<p>None.</p>")
    out.append("<h3>Maintenances</h3>")
    if page.maintenances:
        out.append(
            _table(
                ("status", "maintenance", "scheduled for (UTC)"),
                (
                    (
                        escape(m.status),
                        escape(m.name),
                        _when(m.scheduled_for) if m.scheduled_for else "unscheduled",
                    )
                    for m in page.maintenances
                ),
            )
        )
    else:
        out.append("<p>None scheduled.</p>")
    if page.source is not None:
        out.append(_sources([page.source], now))
    out.append("</section>")
    return "\n".join(out)


def _agents(agents: list[AgentView], kind: str) -> str:
    """By version first (most urgent first), then the first hosts: thousands stay readable."""
    by_version = _table(
        ("version", "majors behind", "agents", "upgraders"),
        (
            (
                escape(row.version),
                "?" if row.majors_behind is None else _n(row.majors_behind),
                _n(row.agents),
                escape(", ".join(row.upgraders)),
            )
            for row in summarise_by_version(agents)
        ),
        kind + "-versions",
    )
    hosts = _table(
        ("hostname", "version", "upgrader", "updater", "update group", "majors behind"),
        (
            (
                escape(a.hostname),
                escape(a.version),
                escape(a.upgrader),
                escape(a.updater_status),
                escape(a.update_group),
                "?" if a.majors_behind is None else _n(a.majors_behind),
            )
            for a in agents[:HOSTS_SHOWN]
        ),
        kind + "-hosts",
    )
    more = (
        f"<p>... and {len(agents) - HOSTS_SHOWN} more (the first {HOSTS_SHOWN} are shown).</p>"
        if len(agents) > HOSTS_SHOWN
        else ""
    )
    return by_version + hosts + more


def _facts(rows: Iterable[tuple[str, str]], caption: str | None) -> str:
    head = f"<caption>{escape(caption)}</caption>" if caption else ""
    body = "".join(f'<tr><th scope="row">{escape(k)}</th><td>{v}</td></tr>' for k, v in rows)
    return f'<table class="facts">{head}<tbody>{body}</tbody></table>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], name: str | None = None) -> str:
    """Cells arrive escaped (they may hold a state marker); headers are escaped here."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows)
    attribute = f' data-table="{escape(name)}"' if name else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(cell: str) -> str:
    return f'<td class="n">{cell}</td>' if cell.lstrip("-").isdigit() else f"<td>{cell}</td>"


def _list(items: Iterable[str], name: str) -> str:
    return f'<ul class="{name}">' + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def _state(text: str, tone: str) -> str:
    return f'<span class="state {tone}">{escape(text)}</span>'


def _n(value: int) -> str:
    return str(value)


def _when(ts: float, seconds: bool = False) -> str:
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return datetime.fromtimestamp(ts, UTC).strftime(fmt) + " UTC"


def _duration(seconds: float) -> str:
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours} h " if hours else "") + f"{minutes} min"
    return text + (f" {secs} s" if secs else "")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
