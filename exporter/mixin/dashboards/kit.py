"""Building blocks for the dashboards, on grafana-foundation-sdk's builders.

`Q` scopes selectors by the dashboards' variables; `stat_panel`, `graph` and `table_panel` make
a panel with its title, description, unit, size and queries in one call; `frame`, `variables`
and `add_annotations` give every dashboard the same frame. No datasource UID: everything goes
through the `${datasource}` variable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    TableSortByFieldState,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    BigValueTextMode,
    GraphTresholdsStyleMode,  # sic, the SDK's name
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableHide,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from exporter.mixin.config import MixinConfig

Json = dict[str, Any]
DATASOURCE: Final = DataSourceRef(type_val="prometheus", uid="${datasource}")

# --------------------------------------------------------------------------------------------
# Queries


class Q:
    """Selectors scoped by the dashboard's variables: cluster, job, tenant (or page)."""

    def __init__(self, config: MixinConfig) -> None:
        self.cluster = config.cluster_label

    def scope(self, *matchers: str, key: str | None = 'tenant=~"$tenant"') -> str:
        base = [f'{self.cluster}=~"$cluster"'] if self.cluster else []
        keys = [key] if key else []
        return "{" + ", ".join([*base, 'job=~"$job"', *keys, *matchers]) + "}"

    def unscoped(self, metric: str) -> str:
        """A series scoped by cluster and job only: what a variable offers its values from
        (a variable that filters its own query by itself offers only what is selected)."""
        return metric + self.scope(key=None)

    def t(self, metric: str, *matchers: str) -> str:
        """A tenant series (raw family or recorded rule)."""
        return metric + self.scope(*matchers)

    def agents(self, metric: str, *matchers: str) -> str:
        """A per-agent series of the one tenant `$agent_tenant`: a table of every tenant's
        agents reads 100,000s of series (seconds per refresh at 50 tenants)."""
        return metric + self.scope(*matchers, key='tenant="$agent_tenant"')

    def p(self, metric: str, *matchers: str) -> str:
        """A status-page series (label `page`)."""
        return metric + self.scope(*matchers, key='page=~"$page"')


def target(
    expr: str, legend: str = "", *, instant: bool = False, table_format: bool = False
) -> prometheus.Dataquery:
    """One Prometheus query: a range query, an instant one, or an instant table."""
    query = prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
    if table_format:
        query = query.format(PromQueryFormat.TABLE).instant()
    elif instant:
        query = query.instant()
    else:
        query = query.range()
    return query.legend_format(legend) if legend else query


def match(label: str, op: str, value: str) -> str:
    """One label matcher, e.g. match("skew", "=~", "a|b") -> skew=~"a|b"."""
    return f'{label}{op}"{value}"'


def steps(base: str, *more: tuple[float, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(color=base, value=None)] + [Threshold(color=c, value=v) for v, c in more])
    )


def value_map(names: Mapping[int, tuple[str, str]]) -> ValueMap:
    return ValueMap(
        options={
            str(k): ValueMappingResult(text=t, color=c, index=i)
            for i, (k, (t, c)) in enumerate(names.items())
        }
    )


# --------------------------------------------------------------------------------------------
# Panels: each helper sets title, description, unit and size; targets get refIds A, B, ...


def _finish(
    panel: Any, title: str, about: str, unit: str, width: int, height: int, targets: Sequence[Any]
) -> Any:
    panel = panel.title(title).description(about).unit(unit).datasource(DATASOURCE)
    for index, query in enumerate(targets):
        panel = panel.with_target(query.ref_id(chr(ord("A") + index)))
    return panel.span(width).height(height)


def stat_panel(
    title: str,
    about: str,
    unit: str,
    *targets: Any,
    thresholds: dash.ThresholdsConfig | None = None,
    mapping: ValueMap | None = None,
    width: int = 4,
    height: int = 4,
    show_name: bool = False,
    decimals: int | None = None,
) -> Any:
    """A stat; `show_name` shows each series' legend instead of its value (for `_info` series,
    whose value is always 1 and whose text is in a label)."""
    panel = (
        stat.Panel()
        .thresholds(thresholds or steps("blue"))
        .graph_mode(BigValueGraphMode.NONE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if mapping is not None:
        panel = panel.mappings([mapping])
    if show_name:
        panel = panel.text_mode(BigValueTextMode.NAME)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return _finish(panel, title, about, unit, width, height, targets)


def graph(
    title: str,
    about: str,
    unit: str,
    *targets: Any,
    thresholds: dash.ThresholdsConfig | None = None,
    width: int = 12,
    height: int = 8,
) -> Any:
    panel = (
        timeseries.Panel()
        .thresholds(thresholds or steps("green"))
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING))
    )
    if thresholds is not None:
        panel = panel.thresholds_style(_dashed())
    return _finish(panel, title, about, unit, width, height, targets)


def _dashed() -> GraphThresholdsStyleConfig:
    """Threshold lines drawn dashed on the graph: where the alert fires."""
    return GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED)


def table_panel(
    title: str,
    about: str,
    unit: str,
    expr: str,
    columns: Sequence[str],
    value: str,
    *,
    thresholds: dash.ThresholdsConfig | None = None,
    mapping: ValueMap | None = None,
    width: int = 24,
    height: int = 8,
) -> Any:
    """An instant table of `expr`'s series: the label `columns` in order, then the value."""
    panel = _organized(
        table.Panel().show_header(True).thresholds(thresholds or steps("green")),
        [*columns, "Value"],
        {"Value": value},
    )
    if mapping is not None:
        panel = panel.mappings([mapping])
    # The value column coloured by the thresholds (or the mapping), worst first.
    panel = panel.override_by_name(
        value, [DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})]
    ).sort_by([TableSortByFieldState().display_name(value).desc(True)])
    return _finish(panel, title, about, unit, width, height, [target(expr, table_format=True)])


def _value_field(index: int) -> str:
    """The name Grafana gives the value of a table's `index`-th query when it merges several."""
    return f"Value #{chr(ord('A') + index)}"


def _merged_panel() -> Any:
    """A table panel that merges its queries' instant results into rows on their shared labels."""
    return (
        table.Panel()
        .show_header(True)
        .thresholds(steps("green"))
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
    )


def _organized(
    panel: Any, fields: Sequence[str], rename: dict[str, str], hidden: Sequence[str] = ()
) -> Any:
    """Shows `fields` in order, renamed, without Time or `hidden`. Grafana's organize step orders
    and hides before it renames, so `fields` and `hidden` use the names the queries give."""
    return panel.with_transformation(
        DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": dict.fromkeys(["Time", *hidden], True),
                "indexByName": {name: i for i, name in enumerate(fields)},
                "renameByName": rename,
            },
        )
    )


def merged_table(
    title: str,
    about: str,
    columns: Sequence[str],
    values: Sequence[tuple[str, str]],
    *,
    width: int = 24,
    height: int = 8,
) -> Any:
    """An instant table joining several queries on their label `columns`: one value column per
    (expression, column name), in order (Grafana names them `Value #A`, `Value #B`, ...)."""
    names = {_value_field(i): name for i, (_, name) in enumerate(values)}
    panel = _organized(_merged_panel(), [*columns, *names], names).sort_by(
        [TableSortByFieldState().display_name(values[-1][1]).desc(True)]
    )
    targets = [target(expr, table_format=True) for expr, _ in values]
    return _finish(panel, title, about, "none", width, height, targets)


@dataclass(frozen=True)
class Column:
    """One column of a `joined_table`: an instant query giving one series per row key. With
    `label`, the column shows that label of the series (a version of an `_info` series, whose
    value is always 1) instead of the value."""

    name: str
    expr: str
    unit: str = "none"
    thresholds: dash.ThresholdsConfig | None = None
    mapping: ValueMap | None = None
    label: str | None = None


def joined_table(
    title: str,
    about: str,
    key: str,
    columns: Sequence[Column],
    *,
    sort_by: str,
    width: int = 24,
    height: int = 8,
) -> Any:
    """An instant table with one row per `key` value, joined from one query per column (merged
    on `key`): each column with its own unit and colours, the rows sorted by `sort_by`, largest
    first."""
    rename: dict[str, str] = {}
    hidden: list[str] = []
    fields: list[str] = [key]  # the fields as the queries name them, in display order
    for index, column in enumerate(columns):
        value = _value_field(index)
        if column.label:
            rename[column.label] = column.name
            hidden.append(value)
            fields.append(column.label)
        else:
            rename[value] = column.name
            fields.append(value)
    panel = _organized(_merged_panel(), fields, rename, hidden).sort_by(
        [TableSortByFieldState().display_name(sort_by).desc(True)]
    )
    for column in columns:
        if column.label:
            continue
        properties = [DynamicConfigValue(id_val="unit", value=column.unit)]
        if column.thresholds is not None or column.mapping is not None:
            properties.append(
                DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})
            )
        if column.thresholds is not None:
            properties.append(
                DynamicConfigValue(id_val="thresholds", value=column.thresholds.build())
            )
        if column.mapping is not None:
            properties.append(DynamicConfigValue(id_val="mappings", value=[column.mapping]))
        panel = panel.override_by_name(column.name, properties)
    targets = [target(column.expr, table_format=True) for column in columns]
    return _finish(panel, title, about, "none", width, height, targets)


# --------------------------------------------------------------------------------------------
# Dashboards


def variables(board: Any, config: MixinConfig, q: Q, *, page: bool) -> Any:
    job_source = "teleport_cloud_exporter_build_info{" + config.job_selector + "}"
    board = board.with_variable(
        dash.DatasourceVariable("datasource").label("Data source").type("prometheus")
    )
    if config.cluster_label:
        cluster = _query_var("cluster", f"label_values({job_source}, {config.cluster_label})")
        if not config.dashboards.multi_cluster:
            # One cluster: the variable matches everything and would only take room.
            cluster = cluster.hide(VariableHide.HIDE_VARIABLE)
        board = board.with_variable(cluster)
    board = board.with_variable(_query_var("job", f"label_values({job_source}, job)"))
    board = board.with_variable(
        _query_var("tenant", f"label_values({q.unscoped('teleport_cloud_probe_success')}, tenant)")
    )
    if page:
        board = board.with_variable(
            _query_var(
                "page", f"label_values({q.unscoped('teleport_cloud_status_indicator')}, page)"
            )
        )
    # One tenant for the per-agent tables, among those $tenant selects.
    agent_tenant = (
        _query_var("agent_tenant", f"label_values({q.t('teleport_cloud_probe_success')}, tenant)")
        .label("Tenant (agent tables)")
        .multi(False)
        .include_all(False)
    )
    return board.with_variable(agent_tenant)


def _query_var(name: str, query: str) -> Any:
    return (
        dash.QueryVariable(name)
        .label(name.capitalize())
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def _annotation(name: str, expr: str, color: str) -> dash.AnnotationQuery:
    return (
        dash.AnnotationQuery()
        .name(name)
        .datasource(DATASOURCE)
        .enable(True)
        .hide(False)
        .icon_color(color)
        .expr(expr)
    )


def add_annotations(board: Any, q: Q, *, page: bool) -> Any:
    """Control-plane major upgrades on both dashboards, status-page maintenance on the overview."""
    upgrades = f"changes({q.t('teleport_cloud_control_plane_major_version')}[10m]) > 0"
    board = board.annotation(_annotation("Control-plane major upgrades", upgrades, "purple"))
    if page:
        maintenance = q.p("teleport_cloud_status_maintenances", match("state", "=", "in_progress"))
        board = board.annotation(
            _annotation("Status-page maintenance", f"{maintenance} > 0", "blue")
        )
    return board


def frame(uid: str, title: str, about: str, config: MixinConfig) -> Any:
    settings = config.dashboards
    link = (
        dash.DashboardLink("Teleport Cloud dashboards")
        .type(DashboardLinkType.DASHBOARDS)
        .tags(list(settings.tags))
        .include_vars(True)
        .keep_time(True)
    )
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(about)
        .tags(list(settings.tags))
        .refresh(settings.refresh)
        .time("now-6h", "now")
        .timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .link(link)
    )
