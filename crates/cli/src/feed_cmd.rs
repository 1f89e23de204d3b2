//! `xinyong feed simulate`: plays a generated district's later deliveries as the sources' front-end machines
//! (前置机) would, as signed pushes to a running platform, at a given rate of records a second.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum FeedCmd {
    /// Push the deliveries of the sources with a front-end machine, dated from `--from` on, in date order.
    Simulate(SimulateArgs),
}

#[derive(Args)]
pub struct SimulateArgs {
    /// The platform's store: a push key is made there for each source (as an administrator would).
    #[command(flatten)]
    pub db: crate::store_cmd::DbArgs,
    /// The generated district (its `sources/` folder holds the deliveries).
    #[arg(long)]
    pub district: PathBuf,
    /// The platform's address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The first delivery date pushed (YYYY-MM-DD); the store's data cut-off by default.
    #[arg(long)]
    pub from: Option<String>,
    /// Records a second, at most.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Records a push, at most (a file is split into pushes of this many rows).
    #[arg(long, default_value_t = 200)]
    pub chunk: usize,
    /// Skip the first this many pushes (a later part of the same feed).
    #[arg(long, default_value_t = 0)]
    pub skip: usize,
    /// Stop after this many pushes.
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn run(cmd: &FeedCmd) -> Result<()> {
    match cmd {
        FeedCmd::Simulate(a) => simulate(a),
    }
}

/// One push: a source's dataset, its delivery date, a slice of a file.
struct Push {
    source: String,
    dataset: String,
    date: String,
    idem: String,
    rows: usize,
    body: Vec<u8>,
}

fn read_file(p: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(p).with_context(|| p.display().to_string())?;
    if p.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: gzip", p.display()))?;
        return Ok(out);
    }
    Ok(raw)
}

/// A file as pushes: CSV keeps its header line on every slice; JSON lines are sliced; .xlsx goes whole.
fn slices(p: &Path, format: xinyong_registry::Format, chunk: usize) -> Result<Vec<(usize, Vec<u8>)>> {
    let bytes = read_file(p)?;
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    Ok(match format {
        xinyong_registry::Format::Xlsx => vec![(1, bytes.clone())],
        xinyong_registry::Format::Jsonl => lines.chunks(chunk.max(1)).map(|c| (c.len(), c.join(&b'\n'))).collect(),
        xinyong_registry::Format::Csv => {
            let Some((head, rows)) = lines.split_first() else {
                return Ok(Vec::new());
            };
            rows.chunks(chunk.max(1))
                .map(|c| {
                    let mut b = head.to_vec();
                    b.push(b'\n');
                    b.extend(c.join(&b'\n'));
                    b.push(b'\n');
                    (c.len(), b)
                })
                .collect()
        }
    })
}

fn simulate(a: &SimulateArgs) -> Result<()> {
    let registry = xinyong_registry::Registry::builtin()?;
    let mut store = crate::store_cmd::open(&a.db.db)?;
    let from = match &a.from {
        Some(f) => f.clone(),
        None => store
            .data_cutoff()?
            .context("the store holds no deliveries: give --from")?,
    };
    let today = xinyong_server::today();
    let sources: Vec<&xinyong_registry::Source> = registry.sources.iter().filter(|s| s.front_end).collect();
    let mut pushes = Vec::new();
    for src in &sources {
        let dir = a.district.join("sources").join(&src.id);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let Some(d) = xinyong_app::pipeline::delivery_of(&f) else {
                continue;
            };
            if d.delivered < from || d.delivered > today {
                continue;
            }
            let Some(def) = registry.dataset(&d.dataset) else {
                continue;
            };
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            for (k, (rows, body)) in slices(&f, def.format, a.chunk)?.into_iter().enumerate() {
                let idem = format!(
                    "sim-{}",
                    &xinyong_server::auth::sha256_hex(&format!("{name}#{k}"))[..24]
                );
                pushes.push(Push {
                    source: src.id.clone(),
                    dataset: d.dataset.clone(),
                    date: d.delivered.clone(),
                    idem,
                    rows,
                    body,
                });
            }
        }
    }
    pushes.sort_by(|x, y| (&x.date, &x.source, &x.dataset).cmp(&(&y.date, &y.source, &y.dataset)));
    pushes.drain(..a.skip.min(pushes.len()));
    if let Some(n) = a.limit {
        pushes.truncate(n);
    }
    if pushes.is_empty() {
        bail!(
            "no delivery of a front-end source dated from {from} to {today} under {}",
            a.district.display()
        );
    }
    // A key per source, as an administrator makes them.
    let mut keys = std::collections::BTreeMap::new();
    for p in &pushes {
        if !keys.contains_key(&p.source) {
            let k = xinyong_server::push::create_key(&mut *store, &p.source, &xinyong_server::timestamp())?;
            keys.insert(
                p.source.clone(),
                xinyong_server::push::Pusher::new(&a.url, &k.key_id, &k.secret),
            );
        }
    }
    drop(store);
    let total: usize = pushes.iter().map(|p| p.rows).sum();
    println!(
        "feed: {} pushes, {total} records from {} sources, deliveries {from} to {}, at most {} records/s",
        pushes.len(),
        keys.len(),
        pushes.last().map_or("", |p| p.date.as_str()),
        a.rate
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("the async runtime")?;
    rt.block_on(async {
        let start = std::time::Instant::now();
        let (mut sent, mut events, mut quarantined) = (0usize, 0usize, 0u64);
        for p in pushes {
            let pusher = &keys[&p.source];
            let (status, body) = pusher
                .send(&p.dataset, &p.date, &p.idem, p.body, xinyong_server::now())
                .await
                .map_err(|e| anyhow::anyhow!("push to {}: {e}", a.url))?;
            if !(200..300).contains(&status) {
                bail!("{} {} ({}): HTTP {status}: {body}", p.dataset, p.date, p.idem);
            }
            let n = body["events"].as_array().map_or(0, |e| e.len());
            let q = body["quarantined"].as_u64().unwrap_or(0);
            let rows = body["rows_read"].as_u64().map_or(p.rows, |r| r as usize);
            let replay = if status == 200 {
                " (a replay: the first receipt)"
            } else {
                ""
            };
            println!(
                "{} {:<24} {rows} rows, {q} quarantined, {} firms rescored, {n} events{replay} (ms: {})",
                p.date, p.dataset, body["firms_rescored"], body["ms"]
            );
            sent += rows;
            events += n;
            quarantined += q;
            // The rate: never ahead of `rate` records a second.
            let due = std::time::Duration::from_secs_f64(sent as f64 / a.rate.max(0.001));
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "feed done: {sent} records in {secs:.1} s ({:.0} records/s), {quarantined} quarantined, {events} events",
            sent as f64 / secs.max(1e-9)
        );
        Ok(())
    })
}
