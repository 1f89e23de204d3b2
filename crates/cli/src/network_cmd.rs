//! `xinyong network`: guarantee groups and circles, top contagion risks, what-if stress tests, the
//! firm-centred view, whole groups; `--graph DIR` analyses a graph written by `xinyong gen --graph-only`.

use crate::store_cmd::{open, DbArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use xinyong_app::network::{self as appnet, NetworkState};
use xinyong_credit::warnings;
use xinyong_network as net;

#[derive(Args)]
pub struct NetworkArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// As of this date (default: the data cut-off).
    #[arg(long)]
    pub as_of: Option<String>,
    /// How many groups and firms the summary lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Stress test: these firms (USCC) fail; prints who turns red or yellow, through which guarantees, and
    /// what each lender loses.
    #[arg(long = "what-if", num_args = 1..)]
    pub what_if: Vec<String>,
    /// The firm-centred view of this firm (JSON): its linked firms and persons to --depth.
    #[arg(long)]
    pub firm: Option<String>,
    #[arg(long, default_value_t = 2)]
    pub depth: usize,
    /// Page of the firm's direct links (0-based) and links per page.
    #[arg(long, default_value_t = 0)]
    pub page: usize,
    #[arg(long, default_value_t = 50)]
    pub per_page: usize,
    /// One whole guarantee group by id (JSON).
    #[arg(long)]
    pub circle: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Analyse a graph written by `xinyong gen --graph-only` instead of a store (timed; for benchmarks).
    #[arg(long)]
    pub graph: Option<PathBuf>,
    /// Write the guarantee graph as of the date (nodes.csv: id, equity, pd; edges.csv: guarantor, borrower,
    /// amount, lender, kind) to this folder, in the format of `xinyong gen --graph-only`.
    #[arg(long)]
    pub export_graph: Option<PathBuf>,
    /// Check the live path's network against the latest stored run: every guarantee group rebuilt as a push
    /// rebuilds it must reproduce each member's place in the network and state (prints the groups checked
    /// and any difference; exits non-zero on one).
    #[arg(long)]
    pub check_live: bool,
    /// With --graph: write each node's SCC and WCC (node, scc, wcc; components numbered by smallest member)
    /// and DebtRank to this CSV.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn m(x: f64) -> String {
    format!("{:.2} m", x / 1e6)
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

pub fn run(a: &NetworkArgs) -> Result<()> {
    if let Some(dir) = &a.graph {
        return graph_file(dir, a.out.as_deref());
    }
    let store = open(&a.db.db)?;
    if a.check_live {
        let t0 = Instant::now();
        let (groups, diffs) = xinyong_app::credit::check_live_network(&*store)?;
        println!(
            "live network: {groups} guarantee groups rebuilt and checked against the latest run in {:.1} s; {} differences",
            t0.elapsed().as_secs_f64(),
            diffs.len()
        );
        for d in diffs.iter().take(20) {
            println!("  {d}");
        }
        anyhow::ensure!(diffs.is_empty(), "the live network differs from the run");
        return Ok(());
    }
    let rules = warnings::builtin_rules();
    let t0 = Instant::now();
    let st = appnet::state(&*store, a.as_of.as_deref(), &rules)?;
    let elapsed = t0.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if let Some(dir) = &a.export_graph {
        let n = export_graph(&st.net.graph, dir)?;
        writeln!(
            out,
            "wrote the guarantee graph as of {} ({n} firms) to {}",
            st.as_of,
            dir.display()
        )?;
        return Ok(());
    }
    show(&mut out, &st, a, elapsed)
}

/// Writes the firms (not persons) and guarantee contracts of a graph; returns the number of firms.
pub fn export_graph(g: &net::Graph, dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join("nodes.csv"))?);
    writeln!(w, "id,equity,pd")?;
    let mut n = 0;
    for node in g.nodes.iter().filter(|x| x.kind != net::NodeKind::Person) {
        let eq = node.equity.map(|e| format!("{e}")).unwrap_or_default();
        writeln!(w, "{},{eq},{}", node.id, node.pd)?;
        n += 1;
    }
    w.flush()?;
    // Lender names are free text (a guarantee firm's creditor): quoted as CSV needs.
    let mut w = csv::Writer::from_path(dir.join("edges.csv"))?;
    w.write_record(["guarantor", "borrower", "amount", "lender", "kind"])?;
    for e in &g.guarantees {
        w.write_record([
            g.nodes[e.guarantor as usize].id.as_str(),
            g.nodes[e.borrower as usize].id.as_str(),
            &e.amount.to_string(),
            &e.lender,
            &e.kind,
        ])?;
    }
    w.flush()?;
    Ok(n)
}

/// The demo's network section: the summary, then what happens if the riskiest member of the largest
/// group fails.
pub fn demo(store: &dyn xinyong_store::Store) -> Result<()> {
    let rules = warnings::builtin_rules();
    let t0 = Instant::now();
    let st = appnet::state(store, None, &rules)?;
    let elapsed = t0.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    let a = NetworkArgs {
        db: DbArgs { db: PathBuf::new() },
        as_of: None,
        top: 5,
        what_if: Vec::new(),
        firm: None,
        depth: 2,
        page: 0,
        per_page: 50,
        circle: None,
        json: false,
        graph: None,
        out: None,
        export_graph: None,
        check_live: false,
    };
    show(&mut out, &st, &a, elapsed)?;
    // The firm whose failure alone would spread the most distress (its DebtRank), not already in default.
    let g = &st.net.graph;
    let pick = (0..g.len())
        .filter(|&v| g.nodes[v].kind == net::NodeKind::Firm && !g.nodes[v].defaulted)
        .max_by(|&a, &b| st.net.debtrank[a].total_cmp(&st.net.debtrank[b]).then(b.cmp(&a)))
        .filter(|&v| st.net.debtrank[v] > 0.0)
        .map(|v| g.nodes[v].id.clone());
    if let Some(f) = pick {
        writeln!(
            out,
            "\n$ xinyong network --db … --what-if {f}   (the firm of the highest DebtRank)"
        )?;
        let s = st.what_if(std::slice::from_ref(&f)).map_err(anyhow::Error::msg)?;
        print_stress(&mut out, &st, &s)?;
    }
    Ok(())
}

fn show(out: &mut impl Write, st: &NetworkState, a: &NetworkArgs, elapsed: f64) -> Result<()> {
    if let Some(id) = &a.circle {
        let g = st
            .groups()
            .into_iter()
            .find(|g| &g.id == id)
            .with_context(|| format!("no guarantee group {id} on {}", st.as_of))?;
        writeln!(out, "{}", serde_json::to_string_pretty(&g)?)?;
        return Ok(());
    }
    if let Some(id) = &a.firm {
        let v = st
            .ego(id, a.depth, a.page.saturating_mul(a.per_page), a.per_page)
            .map_err(anyhow::Error::msg)?;
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    if !a.what_if.is_empty() {
        let s = st.what_if(&a.what_if).map_err(anyhow::Error::msg)?;
        if a.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
        } else {
            print_stress(out, st, &s)?;
        }
        return Ok(());
    }
    let sum = st.summary();
    if a.json {
        let top: Vec<_> = st
            .top_contagion(a.top)
            .into_iter()
            .map(|s| (&s.uscc, &s.network))
            .collect();
        let groups: Vec<_> = st.groups().into_iter().take(a.top).collect();
        let v = serde_json::json!({"as_of": st.as_of, "summary": sum, "top_groups": groups, "top_contagion": top});
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "guarantee network as of {} (model {}; {:.1} s): {} firms in the district, {} outside, {} persons; {} guarantee contracts ({} guarantor-borrower pairs)",
        st.as_of, st.model_version, elapsed, sum.firms, sum.outside_firms, sum.persons, sum.contracts, sum.pairs
    )?;
    writeln!(
        out,
        "groups (connected by guarantees): {} holding {} firms, the largest {}; circles (mutually reachable, ≥ 2 firms): {} holding {} firms",
        sum.groups, sum.firms_in_groups, sum.largest_group, sum.circles, sum.firms_in_circles
    )?;
    let pats: Vec<String> = sum
        .pattern_groups
        .iter()
        .zip(&sum.pattern_firms)
        .map(|((p, g), (_, f))| format!("{p} {g}/{f}"))
        .collect();
    writeln!(out, "patterns (groups/firms): {}", pats.join(", "))?;
    let mut groups = st.groups();
    groups.sort_by(|a, b| {
        b.metrics
            .total_amount
            .total_cmp(&a.metrics.total_amount)
            .then(a.id.cmp(&b.id))
    });
    writeln!(out, "\nlargest groups by guaranteed amount:")?;
    for g in groups.iter().take(a.top) {
        let pats: Vec<&str> = g.patterns.iter().map(|p| p.name_zh()).collect();
        let lenders: Vec<String> = g
            .metrics
            .exposure_by_lender
            .iter()
            .take(3)
            .map(|(l, x)| format!("{l} {}", m(*x)))
            .collect();
        writeln!(
            out,
            "  {}  {} firms ({} in circles), {} contracts, {}, density {:.2}, longest chain {}, red {}, yellow {}; {}; lenders: {}",
            g.id,
            g.metrics.size,
            g.metrics.in_circles,
            g.metrics.contracts,
            m(g.metrics.total_amount),
            g.metrics.density,
            g.metrics.longest_chain,
            g.metrics.red.len(),
            g.metrics.yellow.len(),
            pats.join("、"),
            lenders.join(", ")
        )?;
    }
    writeln!(out, "\ntop contagion risks (own PD → PD with the guarantee network):")?;
    let name = |id: &str| -> String {
        st.node(id)
            .map(|v| st.net.graph.nodes[v as usize].name.clone())
            .unwrap_or_default()
    };
    for s in st.top_contagion(a.top) {
        let Some(n) = &s.network else { continue };
        if n.contagion <= 0.0 {
            break;
        }
        writeln!(
            out,
            "  {} {}: {} → {} (+{:.1} points){}",
            s.uscc,
            name(&s.uscc),
            pct(n.pd_self),
            pct(n.pd_network),
            n.contagion * 100.0,
            n.group.as_deref().map(|g| format!(", group {g}")).unwrap_or_default()
        )?;
        for p in n.paths.iter().take(2) {
            writeln!(
                out,
                "      why: {}",
                path_text(st, &p.firms, &p.amounts, p.weight, false)
            )?;
        }
    }
    Ok(())
}

fn path_text(st: &NetworkState, firms: &[String], amounts: &[f64], weight: f64, failed: bool) -> String {
    let mut s = String::new();
    for (i, f) in firms.iter().enumerate() {
        if i == 0 {
            s.push_str(f);
        } else {
            s.push_str(&format!(" guarantees {} for {}", f, m(amounts[i - 1])));
            if i + 1 < firms.len() {
                s.push_str(", which");
            }
        }
    }
    if failed {
        s.push_str(" (fails in this test)");
    } else if let Some(src) = firms.last().and_then(|f| st.scores.iter().find(|x| &x.uscc == f)) {
        s.push_str(&format!(" (PD {}", pct(src.pd)));
        if let Some(c) = src.colour {
            s.push_str(&format!(", {}", c.key()));
        }
        s.push(')');
    }
    s.push_str(&format!("; weight {weight:.4}"));
    s
}

fn print_stress(out: &mut impl Write, st: &NetworkState, s: &net::Stress) -> Result<()> {
    let g = &st.net.graph;
    let id = |v: u32| g.nodes[v as usize].id.clone();
    let failed: Vec<String> = s.failed.iter().map(|&v| id(v)).collect();
    writeln!(
        out,
        "what if {} fail (as of {}): {} firms turn red or yellow; DebtRank of the shock {:.5}",
        failed.join(", "),
        st.as_of,
        s.affected.len(),
        s.debtrank
    )?;
    for a in &s.affected {
        writeln!(
            out,
            "  turns {}: {} {}  PD {} → {}",
            a.turns,
            id(a.node),
            g.nodes[a.node as usize].name,
            pct(a.pd_before),
            pct(a.pd_after)
        )?;
        for p in &a.paths {
            let firms: Vec<String> = p.nodes.iter().map(|&v| id(v)).collect();
            writeln!(
                out,
                "      because {}",
                path_text(st, &firms, &p.amounts, p.weight, true)
            )?;
        }
    }
    if s.affected.is_empty() {
        writeln!(
            out,
            "  nobody crosses the yellow ({}) or red ({}) PD threshold",
            pct(st.config.contagion.yellow_pd),
            pct(st.config.contagion.red_pd)
        )?;
    }
    writeln!(out, "lenders:")?;
    for l in &s.lenders {
        writeln!(
            out,
            "  {}: failed firms' loans {}, guarantee cover lost {}, loss after surviving guarantors {}, expected loss +{}",
            l.lender,
            m(l.defaulted_exposure),
            m(l.guarantee_cover_lost),
            m(l.loss),
            m(l.expected_loss_increase)
        )?;
    }
    Ok(())
}

/// Reads a graph written by `xinyong gen --graph-only` (nodes.csv: id, equity, pd; edges.csv: guarantor,
/// borrower, amount, lender, kind) and times the full analysis.
pub fn read_graph(dir: &Path) -> Result<net::Graph> {
    let mut g = net::Graph::new();
    let mut r =
        csv::Reader::from_path(dir.join("nodes.csv")).with_context(|| format!("{}/nodes.csv", dir.display()))?;
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("nodes.csv row {}", i + 2))?;
        let v = g.node(&rec[0], net::NodeKind::Firm);
        let num = |j: usize, what: &str| -> Result<Option<f64>> {
            match rec.get(j).map(str::trim).filter(|x| !x.is_empty()) {
                None => Ok(None),
                Some(x) => match x.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Some(v)),
                    _ => bail!("nodes.csv row {}: {what} {x:?} is not a finite number", i + 2),
                },
            }
        };
        let equity = num(1, "equity")?;
        let pd = num(2, "pd")?.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&pd) {
            bail!("nodes.csv row {}: pd {pd} is outside 0..1", i + 2);
        }
        let n = &mut g.nodes[v as usize];
        n.equity = equity;
        n.pd = pd;
    }
    let mut r =
        csv::Reader::from_path(dir.join("edges.csv")).with_context(|| format!("{}/edges.csv", dir.display()))?;
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("edges.csv row {}", i + 2))?;
        let (Some(gi), Some(bi)) = (g.find(&rec[0]), g.find(&rec[1])) else {
            bail!("edges.csv row {}: unknown node", i + 2);
        };
        g.add_guarantee(net::GuaranteeEdge {
            guarantor: gi,
            borrower: bi,
            amount: rec[2]
                .parse()
                .with_context(|| format!("edges.csv row {}: amount", i + 2))?,
            lender: rec.get(3).unwrap_or("").to_string(),
            kind: rec.get(4).unwrap_or("").to_string(),
            fact: 0,
            start: None,
            end: None,
        });
    }
    // Corporate links (parent → subsidiary), when the folder has them.
    let lp = dir.join("links.csv");
    if lp.exists() {
        let mut r = csv::Reader::from_path(&lp).with_context(|| format!("{}", lp.display()))?;
        for (i, rec) in r.records().enumerate() {
            let rec = rec.with_context(|| format!("links.csv row {}", i + 2))?;
            let (Some(from), Some(to)) = (g.find(&rec[0]), g.find(&rec[1])) else {
                bail!("links.csv row {}: unknown node", i + 2);
            };
            let kind = match &rec[2] {
                "parent" => net::LinkKind::Parent,
                "shareholder" => net::LinkKind::Shareholder,
                "controller" => net::LinkKind::Controller,
                "legal_rep" => net::LinkKind::LegalRep,
                x => bail!("links.csv row {}: unknown kind {x:?}", i + 2),
            };
            let share = rec
                .get(3)
                .and_then(|x| x.parse::<f64>().ok())
                .filter(|x| x.is_finite())
                .unwrap_or(0.0);
            g.add_link(net::Link {
                from,
                to,
                kind,
                share,
                fact: 0,
            });
        }
    }
    g.finish();
    Ok(g)
}

fn graph_file(dir: &Path, out_path: Option<&Path>) -> Result<()> {
    let t = Instant::now();
    let g = read_graph(dir)?;
    let read = t.elapsed().as_secs_f64();
    let cfg = net::StressConfig::default();
    let t = Instant::now();
    let c = net::components(&g);
    let t_comp = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let nw = net::analyse(&g, &c, &net::PatternConfig::default());
    let t_pat = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let values = net::economic_values(&g);
    let dr = net::debtrank_each(&g, &values, &cfg);
    let t_dr = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let p_self: Vec<f64> = g.nodes.iter().map(|n| n.pd).collect();
    let p = net::vulnerable(&g, &c, &p_self, &cfg);
    let t_vul = t.elapsed().as_secs_f64();
    let circles = c.sccs.iter().filter(|s| s.len() >= 2).count();
    let total = t_comp + t_pat + t_dr + t_vul;
    println!(
        "graph {}: {} firms, {} contracts ({} pairs); {} groups, {} circles, largest group {}",
        dir.display(),
        g.len(),
        g.guarantees.len(),
        g.pair_count(),
        nw.groups.len(),
        circles,
        nw.groups.iter().map(|x| x.metrics.size).max().unwrap_or(0)
    );
    println!(
        "read {read:.3} s; analysis {total:.3} s = components {t_comp:.3} s + patterns and metrics {t_pat:.3} s + DebtRank of every firm {t_dr:.3} s + vulnerable-node PD {t_vul:.3} s"
    );
    let pats: Vec<String> = net::Pattern::ALL
        .iter()
        .map(|p| format!("{} {}", p.key(), nw.firms.iter().filter(|f| f.has(*p)).count()))
        .collect();
    println!("firms by pattern: {}", pats.join(", "));
    println!(
        "mean network PD {:.6}; max DebtRank {:.6}",
        p.iter().sum::<f64>() / p.len().max(1) as f64,
        dr.iter().cloned().fold(0.0, f64::max)
    );
    if let Some(path) = out_path {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(w, "node,scc,wcc,debtrank,pd_network")?;
        // Components named by their smallest member id (as the cross-check names networkx's).
        let name = |members: &[u32]| {
            members
                .iter()
                .map(|&m| g.nodes[m as usize].id.as_str())
                .min()
                .unwrap_or("")
        };
        let scc_name: Vec<&str> = c.sccs.iter().map(|m| name(m)).collect();
        let wcc_name: Vec<&str> = c.wccs.iter().map(|m| name(m)).collect();
        for v in 0..g.len() {
            writeln!(
                w,
                "{},{},{},{:.12},{:.12}",
                g.nodes[v].id, scc_name[c.scc_of[v] as usize], wcc_name[c.wcc_of[v] as usize], dr[v], p[v]
            )?;
        }
        w.flush()?;
    }
    Ok(())
}
