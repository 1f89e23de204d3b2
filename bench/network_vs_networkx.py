#!/usr/bin/env python3
"""The guarantee-network analysis cross-checked and timed against networkx (and igraph) on the same graph.

    python3 bench/network_vs_networkx.py DIR OURS.csv [--repeat N] [--check-only]

DIR holds nodes.csv (id, equity, pd) and edges.csv (guarantor, borrower, amount, lender, kind), as written by
`xinyong gen --graph-only`; OURS.csv is `xinyong network --graph DIR --out OURS.csv` (node, scc, wcc,
debtrank, pd_network; components named by their smallest member id).

Checks (exit status 1 on any difference):
- the strongly and weakly connected components equal networkx's (and igraph's, when installed);
- every firm's DebtRank (it alone fails, distress 1) equals a plain-Python DebtRank over the networkx graph
  (Battiston et al. 2012, the same conventions as crates/network: W = min(1, amount / equity) summed per pair,
  values = equity shares) to 1e-9.
Times (best of --repeat): networkx SCC + WCC, igraph SCC + WCC, and DebtRank of every firm with networkx.
"""

import argparse
import csv
import sys
import time

import networkx as nx

try:
    import igraph as ig
except ImportError:  # pragma: no cover
    ig = None


def read(dirname):
    equity = {}
    with open(f"{dirname}/nodes.csv", newline="") as f:
        for r in csv.DictReader(f):
            equity[r["id"]] = float(r["equity"]) if r["equity"] else None
    g = nx.DiGraph()
    g.add_nodes_from(equity)
    with open(f"{dirname}/edges.csv", newline="") as f:
        for r in csv.DictReader(f):
            u, v, a = r["guarantor"], r["borrower"], max(float(r["amount"]), 0.0)
            if u == v:
                continue
            if g.has_edge(u, v):
                g[u][v]["amount"] += a
            else:
                g.add_edge(u, v, amount=a)
    return g, equity


def partition(components):
    """node -> smallest member id of its component."""
    out = {}
    for comp in components:
        m = min(comp)
        for v in comp:
            out[v] = m
    return out


def vulnerability(equity, g_node, amount, unknown=0.5):
    if amount <= 0:
        return 0.0
    e = equity[g_node]
    if e is None:
        return unknown
    if e <= 0:
        return 1.0
    return min(1.0, amount / e)


def economic_values(equity):
    known = sorted(e for e in equity.values() if e is not None and e > 0)
    median = known[len(known) // 2] if known else 1.0
    raw = {v: (e if e is not None and e > 0 else (0.0 if e is not None else median)) for v, e in equity.items()}
    total = sum(raw.values())
    return {v: (x / total if total > 0 else 0.0) for v, x in raw.items()}


def debtrank_each(g, equity, values):
    """Each firm with guarantors fails alone: value-weighted distress of the others (as crates/network)."""
    out = {}
    for s in g.nodes:
        if g.in_degree(s) == 0:
            out[s] = 0.0
            continue
        h = {s: 1.0}
        state = {s: 1}  # 1 distressed, 2 inactive
        front = [s]
        while front:
            prev = [(j, h[j]) for j in front]
            nxt = []
            for j, hj in prev:
                for i in g.predecessors(j):  # guarantors of j
                    if state.get(i) == 2:
                        continue
                    w = vulnerability(equity, i, g[i][j]["amount"])
                    if w <= 0:
                        continue
                    x = min(1.0, h.get(i, 0.0) + w * hj)
                    if x > h.get(i, 0.0):
                        h[i] = x
                        if i not in state:
                            state[i] = 1
                            nxt.append(i)
            for j, _ in prev:
                state[j] = 2
            front = [i for i in nxt if state[i] == 1]
        out[s] = sum(x * values[v] for v, x in h.items() if v != s)
    return out


def best(f, repeat):
    t_best, res = None, None
    for _ in range(repeat):
        t = time.perf_counter()
        res = f()
        dt = time.perf_counter() - t
        t_best = dt if t_best is None else min(t_best, dt)
    return t_best, res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("ours")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--check-only", action="store_true", help="components only (CI)")
    a = ap.parse_args()
    g, equity = read(a.dir)
    ours = {}
    with open(a.ours, newline="") as f:
        for r in csv.DictReader(f):
            ours[r["node"]] = r
    fails = []
    if set(ours) != set(g.nodes):
        fails.append(f"node sets differ: {len(ours)} ours, {g.number_of_nodes()} networkx")
    t_nx, (scc, wcc) = best(
        lambda: (
            partition(nx.strongly_connected_components(g)),
            partition(nx.weakly_connected_components(g)),
        ),
        a.repeat,
    )
    for name, part in (("scc", scc), ("wcc", wcc)):
        bad = [v for v in g.nodes if ours.get(v, {}).get(name) != part[v]]
        if bad:
            fails.append(f"{name}: {len(bad)} nodes differ from networkx, e.g. {bad[:3]}")
    n_scc2 = sum(1 for c in nx.strongly_connected_components(g) if len(c) >= 2)
    print(
        f"graph {a.dir}: {g.number_of_nodes()} nodes, {g.number_of_edges()} pairs; "
        f"{n_scc2} SCCs of size >= 2; components equal networkx's: {'yes' if not fails else 'NO'}"
    )
    print(f"networkx SCC + WCC: {t_nx:.3f} s")
    if ig is not None:
        names = list(g.nodes)
        index = {v: i for i, v in enumerate(names)}
        h = ig.Graph(n=len(names), edges=[(index[u], index[v]) for u, v in g.edges], directed=True)

        def igc():
            s = h.connected_components(mode="strong")
            w = h.connected_components(mode="weak")
            return s, w

        t_ig, (s, w) = best(igc, a.repeat)
        for name, cl in (("scc", s), ("wcc", w)):
            part = partition([[names[i] for i in c] for c in cl])
            bad = [v for v in g.nodes if ours.get(v, {}).get(name) != part[v]]
            if bad:
                fails.append(f"{name}: {len(bad)} nodes differ from igraph")
        print(f"igraph {ig.__version__} SCC + WCC: {t_ig:.3f} s")
    if not a.check_only:
        values = economic_values(equity)
        t_dr, dr = best(lambda: debtrank_each(g, equity, values), a.repeat)
        worst = max(abs(dr[v] - float(ours[v]["debtrank"])) for v in g.nodes)
        if worst > 1e-9:
            fails.append(f"DebtRank differs by up to {worst:.3g}")
        print(f"networkx + Python DebtRank of every firm: {t_dr:.3f} s; largest difference from ours {worst:.2e}")
    if fails:
        print("DIFFERENCES:\n  " + "\n  ".join(fails))
        sys.exit(1)
    print("all equal")


if __name__ == "__main__":
    main()
