//! The user-function call tree of one request: an aggregated tree (one node per call
//! path, with call count and total time), bounded in nodes. Recording costs a clock read
//! and a most-recently-used sibling lookup per call; names are copied only when a node is
//! created.

use ext_php_rs::ffi::zend_function;

/// The virtual root (the request itself).
pub const ROOT: u32 = 0;
const NONE: u32 = u32::MAX;

/// One call path.
#[derive(Debug, Clone)]
pub struct Node {
    /// The function (compared by address while recording; never dereferenced later).
    pub func: usize,
    /// Parent node.
    pub parent: u32,
    first_child: u32,
    next_sibling: u32,
    /// Completed calls.
    pub calls: u32,
    /// Sum of their durations.
    pub total_ns: u64,
    /// Monotonic start of the first call.
    pub first_start: u64,
    /// `Class::method` or `function`.
    pub name: String,
    /// Source file.
    pub file: String,
    /// First line of the function.
    pub line: u32,
}

/// Recorder for one request.
#[derive(Debug, Default)]
pub struct Tree {
    nodes: Vec<Node>,
    stack: Vec<(u32, u64)>,
    max_nodes: usize,
    /// Calls not recorded because the tree was full.
    pub dropped: u64,
    /// Whether calls are being recorded for this request.
    pub on: bool,
}

/// Describes a function when its node is created: (name, file, line).
pub type Describe = fn(*const zend_function) -> (String, String, u32);

impl Tree {
    /// Starts recording a request with at most `max_nodes` nodes.
    pub fn start(&mut self, max_nodes: usize, now: u64) {
        self.nodes.clear();
        self.stack.clear();
        self.dropped = 0;
        self.max_nodes = max_nodes;
        self.on = true;
        self.nodes.push(Node {
            func: 0,
            parent: NONE,
            first_child: NONE,
            next_sibling: NONE,
            calls: 1,
            total_ns: 0,
            first_start: now,
            name: String::new(),
            file: String::new(),
            line: 0,
        });
    }

    /// Stops recording and frees what is not needed across requests.
    pub fn clear(&mut self) {
        self.on = false;
        self.nodes.clear();
        self.stack.clear();
        if self.nodes.capacity() > 4 * self.max_nodes.max(64) {
            self.nodes.shrink_to(self.max_nodes);
        }
        if self.stack.capacity() > 4096 {
            self.stack.shrink_to(256);
        }
    }

    /// Innermost recorded node (where a SQL or HTTP span hangs).
    pub fn current(&self) -> u32 {
        self.stack
            .iter()
            .rev()
            .map(|&(n, _)| n)
            .find(|&n| n != NONE)
            .unwrap_or(ROOT)
    }

    /// A user function was entered.
    #[inline]
    pub fn enter(&mut self, func: *const zend_function, now: u64, describe: Describe) {
        if !self.on {
            return;
        }
        let parent = match self.stack.last() {
            Some(&(n, _)) => n,
            None => ROOT,
        };
        if parent == NONE {
            self.dropped += 1;
            self.stack.push((NONE, now));
            return;
        }
        let node = self
            .child(parent, func as usize)
            .or_else(|| self.create(parent, func, now, describe));
        match node {
            Some(n) => self.stack.push((n, now)),
            None => {
                self.dropped += 1;
                self.stack.push((NONE, now));
            }
        }
    }

    /// The innermost user function returned.
    #[inline]
    pub fn exit(&mut self, now: u64) {
        if let Some((n, start)) = self.stack.pop() {
            if n != NONE {
                let node = &mut self.nodes[n as usize];
                node.calls = node.calls.saturating_add(1);
                node.total_ns += now.saturating_sub(start);
            }
        }
    }

    fn child(&mut self, parent: u32, func: usize) -> Option<u32> {
        let first = self.nodes[parent as usize].first_child;
        let mut prev = NONE;
        let mut cur = first;
        while cur != NONE {
            let node = &self.nodes[cur as usize];
            if node.func == func {
                if prev != NONE {
                    // Move to the front: loops hit the first sibling.
                    let next = node.next_sibling;
                    self.nodes[prev as usize].next_sibling = next;
                    self.nodes[cur as usize].next_sibling = first;
                    self.nodes[parent as usize].first_child = cur;
                }
                return Some(cur);
            }
            prev = cur;
            cur = node.next_sibling;
        }
        None
    }

    fn create(
        &mut self,
        parent: u32,
        func: *const zend_function,
        now: u64,
        describe: Describe,
    ) -> Option<u32> {
        if self.nodes.len() > self.max_nodes {
            return None;
        }
        let (name, file, line) = describe(func);
        let id = self.nodes.len() as u32;
        let first = self.nodes[parent as usize].first_child;
        self.nodes.push(Node {
            func: func as usize,
            parent,
            first_child: NONE,
            next_sibling: first,
            calls: 0,
            total_ns: 0,
            first_start: now,
            name,
            file,
            line,
        });
        self.nodes[parent as usize].first_child = id;
        Some(id)
    }

    /// Closes calls still open (exit, fatal error) at `now`.
    pub fn close_all(&mut self, now: u64) {
        while !self.stack.is_empty() {
            self.exit(now);
        }
    }

    /// The recorded nodes, root first (index = node id).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(f: *const zend_function) -> (String, String, u32) {
        (format!("f{}", f as usize), "a.php".into(), 1)
    }

    fn f(n: usize) -> *const zend_function {
        n as *const zend_function
    }

    #[test]
    fn repeated_calls_on_one_path_merge_into_one_node_with_counts_and_time() {
        let mut t = Tree::default();
        t.start(100, 0);
        for i in 0..10 {
            t.enter(f(1), i * 10, describe);
            t.enter(f(2), i * 10 + 1, describe);
            t.exit(i * 10 + 3);
            t.exit(i * 10 + 5);
        }
        t.enter(f(2), 200, describe);
        t.exit(210);
        let n = t.nodes();
        assert_eq!(n.len(), 4, "root, f1, f1>f2, f2");
        let f1 = n.iter().find(|x| x.name == "f1").unwrap();
        assert_eq!((f1.calls, f1.total_ns, f1.parent), (10, 50, ROOT));
        let nested = n
            .iter()
            .find(|x| x.name == "f2" && x.parent != ROOT)
            .unwrap();
        assert_eq!((nested.calls, nested.total_ns), (10, 20));
        let top = n
            .iter()
            .find(|x| x.name == "f2" && x.parent == ROOT)
            .unwrap();
        assert_eq!((top.calls, top.total_ns), (1, 10));
    }

    #[test]
    fn the_node_limit_drops_new_paths_and_keeps_the_stack_balanced() {
        let mut t = Tree::default();
        t.start(3, 0);
        for i in 0..10 {
            t.enter(f(i + 1), i as u64, describe);
            t.enter(f(100), i as u64, describe);
            assert_eq!(t.current() != ROOT, i < 2, "current for {i}");
            t.exit(i as u64 + 1);
            t.exit(i as u64 + 1);
        }
        assert_eq!(t.nodes().len(), 4);
        assert_eq!(t.dropped, 17);
        assert_eq!(t.current(), ROOT);
    }

    #[test]
    fn close_all_ends_open_calls() {
        let mut t = Tree::default();
        t.start(10, 0);
        t.enter(f(1), 0, describe);
        t.enter(f(2), 5, describe);
        t.close_all(20);
        assert_eq!(t.nodes()[1].total_ns, 20);
        assert_eq!(t.nodes()[2].total_ns, 15);
    }
}
