//! Strongly connected components (iterative Tarjan) and weakly connected components (union-find) of the
//! guarantee graph.

use crate::graph::Graph;

#[derive(Debug, Clone, Default)]
pub struct Components {
    /// The strongly connected component of each node (index into `sccs`).
    pub scc_of: Vec<u32>,
    /// Members of each SCC, in Tarjan's emission order: every SCC comes after all SCCs it reaches through
    /// guarantee edges (borrowers before their guarantors), which is the order distress spreads in.
    pub sccs: Vec<Vec<u32>>,
    /// The weakly connected component of each node (index into `wccs`).
    pub wcc_of: Vec<u32>,
    /// Members of each weakly connected component, sorted; components in order of their smallest member.
    pub wccs: Vec<Vec<u32>>,
}

/// Both kinds of component of the guarantee graph (nodes without guarantees are singletons).
pub fn components(g: &Graph) -> Components {
    let (scc_of, sccs) = tarjan(g);
    let (wcc_of, wccs) = weak(g);
    Components {
        scc_of,
        sccs,
        wcc_of,
        wccs,
    }
}

const UNSEEN: u32 = u32::MAX;

fn tarjan(g: &Graph) -> (Vec<u32>, Vec<Vec<u32>>) {
    let n = g.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut scc_of = vec![UNSEEN; n];
    let mut sccs: Vec<Vec<u32>> = Vec::new();
    let mut next = 0u32;
    // Call stack of (node, position in its adjacency).
    let mut call: Vec<(u32, usize)> = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != UNSEEN {
            continue;
        }
        call.push((root, 0));
        index[root as usize] = next;
        low[root as usize] = next;
        next += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            let adj = g.borrowers(v);
            if *pos < adj.len() {
                let w = adj[*pos].0;
                *pos += 1;
                if index[w as usize] == UNSEEN {
                    index[w as usize] = next;
                    low[w as usize] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    call.push((w, 0));
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent as usize] = low[parent as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let id = sccs.len() as u32;
                let mut members = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    scc_of[w as usize] = id;
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                members.sort_unstable();
                sccs.push(members);
            }
        }
    }
    (scc_of, sccs)
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let p = parent[parent[x as usize] as usize];
        parent[x as usize] = p;
        x = p;
    }
    x
}

fn weak(g: &Graph) -> (Vec<u32>, Vec<Vec<u32>>) {
    let n = g.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    for v in 0..n as u32 {
        for &(w, _) in g.borrowers(v) {
            let (a, b) = (find(&mut parent, v), find(&mut parent, w));
            if a != b {
                // The smaller root wins, so a component's root is its smallest member.
                let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                parent[hi as usize] = lo;
            }
        }
    }
    let mut wcc_of = vec![UNSEEN; n];
    let mut wccs: Vec<Vec<u32>> = Vec::new();
    for v in 0..n as u32 {
        let r = find(&mut parent, v);
        if wcc_of[r as usize] == UNSEEN {
            wcc_of[r as usize] = wccs.len() as u32;
            wccs.push(Vec::new());
        }
        let c = wcc_of[r as usize];
        wcc_of[v as usize] = c;
        wccs[c as usize].push(v);
    }
    (wcc_of, wccs)
}
