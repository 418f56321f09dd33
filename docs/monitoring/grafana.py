#!/usr/bin/env python3
# Writes docs/monitoring/grafana-watcher.json and grafana-operator.json (issue 20): the panels
# are declared here once; edit this file and run `python3 docs/monitoring/grafana.py .` from the
# repository root. tests/tests/metrics.rs checks every metric the JSON names against real scrapes.
import json, sys

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

class Board:
    def __init__(self, uid, title, desc, info_metric):
        self.uid, self.title, self.desc, self.info = uid, title, desc, info_metric
        self.panels, self.next_id, self.y, self.x = [], 1, 0, 0
        self.row_h = 0

    def nid(self):
        i = self.next_id; self.next_id += 1; return i

    def row(self, title):
        if self.x:
            self.y += self.row_h; self.x = 0
        self.panels.append({"id": self.nid(), "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1; self.row_h = 0

    def place(self, w, h):
        if self.x + w > 24:
            self.y += self.row_h; self.x = 0; self.row_h = 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w; self.row_h = max(self.row_h, h)
        return pos

    def targets(self, queries):
        out = []
        for i, (expr, legend) in enumerate(queries):
            out.append({"datasource": DS, "expr": expr, "legendFormat": legend,
                        "refId": chr(ord("A") + i)})
        return out

    def stat(self, title, desc, queries, w=4, h=4, unit="none", steps=None, mappings=None):
        steps = steps or [{"color": "green", "value": None}]
        self.panels.append({
            "id": self.nid(), "type": "stat", "title": title, "description": desc,
            "datasource": DS, "gridPos": self.place(w, h),
            "targets": self.targets(queries),
            "fieldConfig": {"defaults": {"unit": unit, "mappings": mappings or [],
                                          "thresholds": {"mode": "absolute", "steps": steps}},
                            "overrides": []},
            "options": {"colorMode": "background", "graphMode": "none", "justifyMode": "auto",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "textMode": "auto"},
        })

    def series(self, title, desc, queries, w=12, h=8, unit="none"):
        self.panels.append({
            "id": self.nid(), "type": "timeseries", "title": title, "description": desc,
            "datasource": DS, "gridPos": self.place(w, h),
            "targets": self.targets(queries),
            "fieldConfig": {"defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10}},
                            "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "none"}},
        })

    def doc(self):
        return {
            "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "",
                          "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
            "__requires": [
                {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
                {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
                {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
                {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            ],
            "annotations": {"list": []},
            "description": self.desc,
            "editable": True,
            "graphTooltip": 1,
            "links": [],
            "panels": self.panels,
            "refresh": "30s",
            "schemaVersion": 38,
            "tags": ["plasma"],
            "templating": {"list": [{
                "name": "instance", "label": "instance", "type": "query", "datasource": DS,
                "query": {"query": f"label_values({self.info}, instance)", "refId": "instance"},
                "definition": f"label_values({self.info}, instance)",
                "includeAll": True, "multi": True, "refresh": 2, "sort": 1,
                "current": {}, "options": [], "hide": 0,
            }]},
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {},
            "timezone": "utc",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
        }

I = '{instance=~"$instance"}'
def m(name, extra=""):
    return f'{name}{{instance=~"$instance"{extra}}}'

RED, GREEN, ORANGE = "red", "green", "orange"

# ---------------------------------------------------------------------------------------------
w = Board("plasma-watcher", "Plasma watchtower",
          "plasma-watcher /metrics (issue 20): docs/operations.md \"Monitoring\" explains every figure and its healthy value.",
          "plasma_watcher_info")
w.row("Safety")
w.stat("Chain", "1 while no committed block was withheld or invalid.",
       [(m("plasma_watcher_chain_safe"), "{{instance}}")], w=4,
       steps=[{"color": RED, "value": None}, {"color": GREEN, "value": 1}],
       mappings=[{"type": "value", "options": {"0": {"text": "BYZANTINE", "color": RED},
                                               "1": {"text": "SAFE", "color": GREEN}}}])
w.stat("Byzantine since block", "The first withheld or invalid block (0: none).",
       [(m("plasma_watcher_byzantine_from"), "{{instance}}")], w=4,
       steps=[{"color": GREEN, "value": None}, {"color": RED, "value": 1}])
w.stat("Stalled", "The alert thread's stall detector: loop, L1 cursor or child sync not advancing.",
       [(m("plasma_watcher_stalled"), "{{instance}}")], w=4,
       steps=[{"color": GREEN, "value": None}, {"color": RED, "value": 1}],
       mappings=[{"type": "value", "options": {"0": {"text": "RUNNING"}, "1": {"text": "STALLED"}}}])
w.stat("Funding", "Balance minus what exiting every guarded output needs (ETH).",
       [(f'({m("plasma_watcher_balance_wei")} - {m("plasma_watcher_funding_needed_wei")}) / 1e18', "{{instance}}")],
       w=4, unit="none", steps=[{"color": RED, "value": None}, {"color": GREEN, "value": 0}])
w.stat("Cross-check disagreements", "Blocks a cross-checked peer judged differently.",
       [(m("plasma_watcher_cross_check_disagreements"), "{{instance}}")], w=4,
       steps=[{"color": GREEN, "value": None}, {"color": RED, "value": 1}])
w.stat("Healthy L1 endpoints", "Endpoints answering, on the right chain and not lagging, of those configured.",
       [(m("plasma_watcher_l1_endpoints_healthy"), "healthy {{instance}}"),
        (m("plasma_watcher_l1_endpoints"), "configured {{instance}}")], w=4,
       steps=[{"color": RED, "value": None}, {"color": GREEN, "value": 1}])

w.row("Following L1 and the child chain")
w.series("L1 head and cursor", "L1's latest block and the last one the watcher read.",
         [(m("plasma_watcher_l1_head"), "head {{instance}}"), (m("plasma_watcher_l1_cursor"), "cursor {{instance}}")])
w.series("L1 lag", "Head minus cursor, in blocks and in L1 seconds (confirmations - 1 blocks is keeping up).",
         [(m("plasma_watcher_l1_lag_blocks"), "blocks {{instance}}"), (m("plasma_watcher_l1_lag_seconds"), "seconds {{instance}}"),
          (m("plasma_watcher_l1_confirmations"), "confirmations {{instance}}")])
w.series("Child chain: committed and validated", "The highest child block committed on L1 and the last block validated.",
         [(m("plasma_watcher_child_head"), "committed {{instance}}"), (m("plasma_watcher_synced_block"), "validated {{instance}}")])
w.series("Child chain lag", "Committed child blocks not yet validated, and how long the oldest has waited (L1 seconds).",
         [(m("plasma_watcher_child_lag_blocks"), "blocks {{instance}}"), (m("plasma_watcher_child_lag_seconds"), "seconds {{instance}}"),
          (m("plasma_watcher_pending_blocks"), "pending {{instance}}")])
w.series("Block downloads", "Downloads in progress, and those projected to finish after the availability deadline.",
         [(m("plasma_watcher_downloads_in_flight"), "in flight {{instance}}"),
          (m("plasma_watcher_downloads_projected_late"), "projected late {{instance}}")])
w.series("Exits watched", "Standard and in-flight exits the watcher follows.",
         [(m("plasma_watcher_exits_watched"), "standard {{instance}}"),
          (m("plasma_watcher_in_flight_exits_watched"), "in-flight {{instance}}")])

w.row("Guarded funds and actions")
w.series("Balance and what a mass exit needs (ETH)", "The tower's balance against the bonds and gas of exiting every guarded output (WATCH-13).",
         [(f'{m("plasma_watcher_balance_wei")} / 1e18', "balance {{instance}}"),
          (f'{m("plasma_watcher_funding_needed_wei")} / 1e18', "needed {{instance}}")])
w.series("Guarded", "Owners guarded, their outputs worth exiting, and those the balance cannot pay for.",
         [(m("plasma_watcher_guarded_owners"), "owners {{instance}}"), (m("plasma_watcher_guarded_outputs"), "outputs {{instance}}"),
          (m("plasma_watcher_unaffordable_outputs"), "unaffordable {{instance}}")])
w.series("Actions per 15 minutes", "L1 transactions the watcher sent and what became of them.",
         [(f'increase({m("plasma_watcher_actions_sent_total")}[15m])', "sent {{instance}}"),
          (f'increase({m("plasma_watcher_actions_mined_total")}[15m])', "mined {{instance}}"),
          (f'increase({m("plasma_watcher_actions_failed_total")}[15m])', "failed {{instance}}"),
          (f'increase({m("plasma_watcher_actions_stuck_total")}[15m])', "stuck {{instance}}"),
          (f'increase({m("plasma_watcher_actions_fee_bumps_total")}[15m])', "fee bumps {{instance}}"),
          (f'increase({m("plasma_watcher_deadline_alerts_total")}[15m])', "deadline tight {{instance}}")])
w.series("Events per 15 minutes, by kind", "Byzantine findings and what was done (kinds as /events names them).",
         [(f'sum by (kind) (increase({m("plasma_watcher_events_by_kind_total")}[15m])) > 0', "{{kind}}")])

w.row("Alerts and cross-checks")
w.series("Alert delivery per hour", "Webhook messages sent, failed after every retry, dropped, retried.",
         [(f'increase({m("plasma_watcher_alerts_sent_total")}[1h])', "sent {{instance}}"),
          (f'increase({m("plasma_watcher_alerts_failed_total")}[1h])', "failed {{instance}}"),
          (f'increase({m("plasma_watcher_alerts_dropped_total")}[1h])', "dropped {{instance}}"),
          (f'increase({m("plasma_watcher_alerts_retries_total")}[1h])', "retries {{instance}}")])
w.series("Cross-checked peers", "Peers configured and unreachable.",
         [(m("plasma_watcher_cross_check_peers"), "peers {{instance}}"),
          (m("plasma_watcher_cross_check_peers_unreachable"), "unreachable {{instance}}")])

# ---------------------------------------------------------------------------------------------
o = Board("plasma-operator", "Plasma operator",
          "plasma-operator /metrics (issue 20): docs/operations.md \"Monitoring\" explains every figure and its healthy value.",
          "plasma_operator_info")
o.row("At a glance")
o.stat("Block production", "1 once a credited deposit vanished from L1 and production stopped (LEDGER-7).",
       [(m("plasma_operator_halted"), "{{instance}}")], w=4,
       steps=[{"color": GREEN, "value": None}, {"color": RED, "value": 1}],
       mappings=[{"type": "value", "options": {"0": {"text": "RUNNING"}, "1": {"text": "HALTED"}}}])
o.stat("L1 loops", "1 while the last step of an L1 loop failed.",
       [(m("plasma_operator_l1_error"), "{{instance}}")], w=4,
       steps=[{"color": GREEN, "value": None}, {"color": ORANGE, "value": 1}],
       mappings=[{"type": "value", "options": {"0": {"text": "OK"}, "1": {"text": "FAILING"}}}])
o.stat("Uncommitted blocks", "Produced blocks whose root is not yet on L1.",
       [(m("plasma_operator_uncommitted_blocks"), "{{instance}}")], w=4,
       steps=[{"color": GREEN, "value": None}, {"color": ORANGE, "value": 2}, {"color": RED, "value": 5}])
o.stat("Mempool", "Transactions waiting for a block.",
       [(m("plasma_operator_mempool_size"), "{{instance}}")], w=4)
o.stat("Deposits waiting", "Deposits mined on L1 and not yet credited.",
       [(m("plasma_operator_deposits_uncredited"), "{{instance}}")], w=4)
o.stat("Healthy L1 endpoints", "Endpoints answering, on the right chain and not lagging.",
       [(m("plasma_operator_l1_endpoints_healthy"), "healthy {{instance}}"),
        (m("plasma_operator_l1_endpoints"), "configured {{instance}}")], w=4,
       steps=[{"color": RED, "value": None}, {"color": GREEN, "value": 1}])

o.row("Blocks and transactions")
o.series("Blocks produced per 10 minutes", "Child blocks made.",
         [(f'increase({m("plasma_operator_blocks_produced_total")}[10m])', "{{instance}}")])
o.series("Mempool and UTXO set", "Transactions waiting; unspent outputs; outputs exiting (LEDGER-9).",
         [(m("plasma_operator_mempool_size"), "mempool {{instance}}"), (m("plasma_operator_utxos"), "utxos {{instance}}"),
          (m("plasma_operator_exiting_outputs"), "exiting {{instance}}")])
o.series("Transactions per second", "Accepted and refused.",
         [(f'rate({m("plasma_operator_txs_accepted_total")}[5m])', "accepted {{instance}}"),
          (f'rate({m("plasma_operator_txs_rejected_total")}[5m])', "rejected {{instance}}")], unit="reqps")
o.series("Where submissions spend their time", "Seconds per second in each ingest stage.",
         [(f'sum by (stage) (rate({m("plasma_operator_ingest_seconds_total")}[5m]))', "{{stage}}")], unit="s")

o.row("Root submission (OP-4)")
o.series("Root submission lag", "Produced blocks not yet committed on L1, and the next block number.",
         [(m("plasma_operator_uncommitted_blocks"), "uncommitted {{instance}}")])
o.series("Submitter per 30 minutes", "submitBlock transactions: sent, mined, fee bumps, stuck, failed.",
         [(f'increase({m("plasma_operator_root_submissions_total")}[30m])', "sent {{instance}}"),
          (f'increase({m("plasma_operator_submitter_mined_total")}[30m])', "mined {{instance}}"),
          (f'increase({m("plasma_operator_submitter_fee_bumps_total")}[30m])', "fee bumps {{instance}}"),
          (f'increase({m("plasma_operator_submitter_stuck_total")}[30m])', "stuck {{instance}}"),
          (f'increase({m("plasma_operator_submitter_failed_total")}[30m])', "failed {{instance}}")])
o.series("Submitter nonce", "The nonce of the last root submission: it should step by one per block.",
         [(m("plasma_operator_submitter_nonce"), "{{instance}}"), (m("plasma_operator_next_child_block"), "next child block {{instance}}")])

o.row("Deposits and L1 (OP-5, OP-7)")
o.series("Deposits lag", "L1 head minus the deposit cursor (deposit_confirmations - 1 is keeping up), and deposits waiting.",
         [(m("plasma_operator_deposits_lag_blocks"), "lag blocks {{instance}}"),
          (m("plasma_operator_deposits_uncredited"), "uncredited {{instance}}")])
o.series("L1 cursors", "L1 head, the deposit and exit cursors, and the newest credited deposit's block.",
         [(m("plasma_operator_l1_head"), "head {{instance}}"), (m("plasma_operator_deposit_cursor"), "deposits {{instance}}"),
          (m("plasma_operator_exit_cursor"), "exits {{instance}}"),
          (m("plasma_operator_deposit_newest_l1_block"), "newest deposit {{instance}}")])

root = sys.argv[1]
for name, b in [("grafana-watcher.json", w), ("grafana-operator.json", o)]:
    with open(f"{root}/docs/monitoring/{name}", "w") as f:
        json.dump(b.doc(), f, indent=2)
        f.write("\n")
print("ok")
