//! Compiling many services on two threads, with the result and the diagnostics of a
//! compile on one: the first half in file order on the calling thread, the second on
//! another, each with a [`Ctx::part`] whose diagnostics are taken back in order.
//!
//! The repository tree stays on the calling thread (a commit's tree cannot be shared):
//! the other thread asks for what it reads, and the calling thread answers between its
//! own services and, once they are done, until the other thread is.

use std::sync::mpsc::{channel, Receiver, Sender};

use super::super::context::Ctx;
use super::super::tree::{Limited, RepoTree};

/// Fewer items than this are compiled on the calling thread alone: a thread costs more
/// than it saves.
const MIN_SPLIT: usize = 64;

/// `compile` applied to each of `items` in order, the second half on another thread
/// when there are many and the machine has more than one core. Each item is dropped
/// on the thread that compiled it.
pub(crate) fn map<T, R, F>(ctx: &mut Ctx, mut items: Vec<T>, compile: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(&mut Ctx, T) -> R + Sync,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if items.len() < MIN_SPLIT || cores < 2 {
        return items.into_iter().map(|i| compile(ctx, i)).collect();
    }
    let second = items.split_off(items.len() / 2);
    let first = items;
    let tree = ctx.tree;
    let shared = ctx.shared();
    let compile = &compile;
    let shared = &shared;
    let (mut out, found, (rest, rest_found)) = std::thread::scope(|s| {
        // Made here, so that a panic on this thread drops `answered` before the scope
        // waits for the other thread, whose questions then fail instead of waiting.
        let (asks, answered) = channel::<Ask>();
        let other = s.spawn(move || {
            let remote = Remote(asks);
            let mut part = Ctx::part(shared, &remote);
            let out: Vec<R> = second.into_iter().map(|i| compile(&mut part, i)).collect();
            (out, part.found())
        });
        let mut part = Ctx::part(shared, tree);
        let mut out = Vec::with_capacity(first.len() * 2 + 1);
        for i in first {
            out.push(compile(&mut part, i));
            while let Ok(ask) = answered.try_recv() {
                ask.answer(tree);
            }
        }
        // Until the other thread is done (and drops its end).
        serve(&answered, tree);
        let rest = other
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (out, part.found(), rest)
    });
    ctx.absorb(found);
    ctx.absorb(rest_found);
    out.extend(rest);
    out
}

fn serve(asks: &Receiver<Ask>, tree: &dyn RepoTree) {
    for ask in asks {
        ask.answer(tree);
    }
}

/// A question to the tree and where its answer goes.
enum Ask {
    Display(String, Sender<String>),
    Read(String, Sender<Result<Option<Vec<u8>>, String>>),
    ReadLimited(String, usize, Sender<Result<Option<Limited>, String>>),
    ListDir(String, Sender<Result<Option<Vec<String>>, String>>),
}

impl Ask {
    fn answer(self, tree: &dyn RepoTree) {
        // A receiver gone has panicked; its thread's panic is what is reported.
        let _ = match self {
            Ask::Display(p, to) => to.send(tree.display(&p)).is_ok(),
            Ask::Read(p, to) => to.send(tree.read(&p)).is_ok(),
            Ask::ReadLimited(p, max, to) => to.send(tree.read_limited(&p, max)).is_ok(),
            Ask::ListDir(p, to) => to.send(tree.list_dir(&p)).is_ok(),
        };
    }
}

/// The tree as the other thread sees it: each call asked of the calling thread.
struct Remote(Sender<Ask>);

/// What a call answers when the calling thread is gone (it panicked).
const GONE: &str = "the repository tree is no longer readable";

impl Remote {
    fn ask<A>(&self, ask: impl FnOnce(Sender<A>) -> Ask) -> Option<A> {
        let (to, from) = channel();
        self.0.send(ask(to)).ok()?;
        from.recv().ok()
    }
}

impl RepoTree for Remote {
    fn display(&self, path: &str) -> String {
        self.ask(|to| Ask::Display(path.to_string(), to))
            .unwrap_or_else(|| path.to_string())
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.ask(|to| Ask::Read(path.to_string(), to))
            .unwrap_or_else(|| Err(GONE.to_string()))
    }

    fn read_limited(&self, path: &str, max: usize) -> Result<Option<Limited>, String> {
        self.ask(|to| Ask::ReadLimited(path.to_string(), max, to))
            .unwrap_or_else(|| Err(GONE.to_string()))
    }

    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        self.ask(|to| Ask::ListDir(path.to_string(), to))
            .unwrap_or_else(|| Err(GONE.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::context::SourceFile;
    use super::super::super::diagnostic::Severity;
    use super::super::super::load_options::LoadOptions;
    use super::super::super::location::{KeyPath, LocationIndex};
    use super::super::super::tree::MemTree;
    use super::*;

    const TEXT: &str = "services:\n  a:\n    image: x\n";

    /// Reports on some items (more than a load keeps, past the first half), reads the
    /// tree on others: what a compile of many services does.
    fn compile(ctx: &mut Ctx, i: usize) -> Option<usize> {
        let path = KeyPath::root().key("services").key("a");
        if i % 3 == 0 {
            ctx.error(0, &path.key("image"), format!("item {i} is wrong"));
        }
        if i % 5 == 0 {
            ctx.push_at(Severity::Warning, 0, &path, (i + 1, 1), format!("item {i}"));
        }
        if i % 7 == 0 {
            let read = ctx.tree.read(&format!("stack/{}.txt", i % 2)).ok()??;
            let shown = ctx.tree.display("stack/0.txt");
            return Some(read.len() + shown.len() + ctx.tree.list_dir("stack").ok()??.len());
        }
        (i % 3 != 0).then_some(i * 2)
    }

    fn ctx<'t>(tree: &'t MemTree, opts: &'t LoadOptions) -> Ctx<'t> {
        let mut ctx = Ctx::new(tree, opts);
        ctx.files.to_mut().push(SourceFile {
            name: "stack/compose.yaml".to_string(),
            dir: "stack".to_string(),
            text: TEXT.to_string(),
            index: LocationIndex::build(TEXT).unwrap(),
            merged: false,
        });
        ctx
    }

    /// Two threads give what one gives: the results in order, the same diagnostics
    /// kept and the same counted beyond the cap, and the tree read from either half.
    #[test]
    fn two_threads_compile_as_one() {
        let tree = MemTree::new()
            .with("stack/1.txt", b"one".as_slice())
            .with("stack/compose.yaml", TEXT.as_bytes());
        let opts = LoadOptions::default();
        for n in [10, MIN_SPLIT, 150, 400] {
            let mut one = ctx(&tree, &opts);
            let want: Vec<_> = (0..n).map(|i| compile(&mut one, i)).collect();
            let mut two = ctx(&tree, &opts);
            let got = map(&mut two, (0..n).collect(), |ctx, i| compile(ctx, i));
            assert_eq!(got, want, "{n}");
            let (one, two) = (one.finish(), two.finish());
            assert_eq!(one.0, two.0, "{n}");
            if n == 400 {
                let cap = crate::model::limits::MAX_DIAGNOSTICS;
                assert_eq!(
                    two.0.len(),
                    cap + 1,
                    "kept, then one line counting the rest"
                );
            }
        }
    }
}
