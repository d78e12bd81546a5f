//! The template context of a node, built in constant time: params, secrets and env converted
//! once, `run`, the node's item, and `steps` — a snapshot of the run's state that templates read
//! lazily. A step of a 10 000-step runbook does not copy the other steps' state to start.
//!
//! Each `steps.<id>` a scope can name is one *slot*: a step, a whole fan-out (its own status and
//! `items`), or a call (its group's status).

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};

use super::event::StepStatus;

/// One slot's state as templates read it.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Its status.
    pub status: StepStatus,
    /// Its outputs (a map).
    pub outputs: Value,
    /// The items of a fan-out (a list of `{item, status, outputs}`).
    pub items: Value,
}

impl Cell {
    /// A slot whose step has not started.
    pub fn pending() -> Self {
        Self {
            status: StepStatus::Pending,
            outputs: Value::from_pairs(std::iter::empty::<(Value, Value)>()),
            items: Value::from(Vec::<Value>::new()),
        }
    }
}

/// How many cells share one chunk of [`Cells`].
const CHUNK: usize = 64;

/// Every slot's cell, as a snapshot steps hold while they run. The scheduler updates it in
/// place; an update while a step still holds an older snapshot copies only what it touches:
/// the list of chunks (one pointer per 64 slots) and the one chunk of the slot, never every
/// cell (which made each step of a long chain copy the whole run).
#[derive(Debug, Clone, Default)]
pub struct Cells {
    chunks: Arc<Vec<Arc<Vec<Cell>>>>,
    len: usize,
}

impl Cells {
    /// A slot's cell.
    pub fn get(&self, slot: usize) -> Option<&Cell> {
        if slot >= self.len {
            return None;
        }
        self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)
    }

    /// A slot's cell, to change (copied first when a snapshot still holds it).
    ///
    /// # Panics
    /// When `slot` is not below [`Cells::len`] (slots are made by [`Cells::resize`] first).
    pub fn get_mut(&mut self, slot: usize) -> &mut Cell {
        assert!(slot < self.len, "cell {slot} of {}", self.len);
        let chunk = &mut Arc::make_mut(&mut self.chunks)[slot / CHUNK];
        &mut Arc::make_mut(chunk)[slot % CHUNK]
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Grows to `len` slots (new ones pending); never shrinks.
    pub fn resize(&mut self, len: usize) {
        if len <= self.len {
            return;
        }
        let chunks = Arc::make_mut(&mut self.chunks);
        let mut left = len - self.len;
        if let Some(last) = chunks.last_mut() {
            let room = CHUNK - last.len();
            let added = room.min(left);
            if added > 0 {
                let last = Arc::make_mut(last);
                last.resize(last.len() + added, Cell::pending());
                left -= added;
            }
        }
        while left > 0 {
            let added = left.min(CHUNK);
            chunks.push(Arc::new(vec![Cell::pending(); added]));
            left -= added;
        }
        self.len = len;
    }
}

/// Which slot each `steps.<id>` of a scope stands for. Grows when a fan-out known only at run
/// time brings new groups (a fanned-out call).
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Per scope: its local ids in plan order, each with its slot.
    ids: Vec<Vec<(String, usize)>>,
    /// Per scope: local id → position in `ids`.
    lookup: Vec<HashMap<String, usize>>,
    /// Per scope: the scope whose ids it also sees (a block sees the steps around it).
    outer: Vec<Option<usize>>,
    slots: usize,
}

impl Layout {
    /// The slot of `local_id` in `scope`, created when new.
    pub fn slot(&mut self, scope: usize, local_id: &str) -> usize {
        self.grow(scope);
        if let Some(&position) = self.lookup[scope].get(local_id) {
            return self.ids[scope][position].1;
        }
        let slot = self.slots;
        self.slots += 1;
        self.lookup[scope].insert(local_id.to_owned(), self.ids[scope].len());
        self.ids[scope].push((local_id.to_owned(), slot));
        slot
    }

    /// A block's scope also sees the ids of the scope around it.
    pub fn see_through(&mut self, scope: usize, outer: usize) {
        self.grow(scope);
        self.outer[scope] = Some(outer);
    }

    fn grow(&mut self, scope: usize) {
        while self.ids.len() <= scope {
            self.ids.push(Vec::new());
            self.lookup.push(HashMap::new());
            self.outer.push(None);
        }
    }

    /// The slot `local_id` names from `scope`: its own, or one of a scope it sees through.
    fn find(&self, scope: usize, local_id: &str) -> Option<usize> {
        let mut at = Some(scope);
        while let Some(s) = at {
            if let Some(&position) = self.lookup.get(s).and_then(|l| l.get(local_id)) {
                return Some(self.ids[s][position].1);
            }
            at = self.outer.get(s).copied().flatten();
        }
        None
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.slots
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots == 0
    }
}

/// `steps` as seen from one scope, at one moment of the run.
#[derive(Debug)]
pub struct StepsView {
    /// Which slot each id is.
    pub layout: Arc<Layout>,
    /// The state when the snapshot was taken.
    pub cells: Cells,
    /// The scope whose ids are visible.
    pub scope: usize,
}

impl Object for StepsView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let slot = self.layout.find(self.scope, key.as_str()?)?;
        let cell = self.cells.get(slot).cloned().unwrap_or_else(Cell::pending);
        Some(Value::from_pairs([
            ("status", Value::from(cell.status.as_str())),
            ("outputs", cell.outputs),
            ("items", cell.items),
        ]))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.layout
                .ids
                .get(self.scope)
                .map(|ids| ids.iter().map(|(id, _)| Value::from(id.as_str())).collect())
                .unwrap_or_default(),
        )
    }
}

/// A context (a map) with one more name, or a name replaced (`result`, a fan-out's item).
pub fn extend(context: &Value, name: &str, value: Value) -> Value {
    let mut pairs: Vec<(Value, Value)> = context
        .try_iter()
        .map(|keys| {
            keys.filter(|k| k.as_str() != Some(name))
                .map(|k| {
                    let v = context.get_item(&k).unwrap_or_default();
                    (k, v)
                })
                .collect()
        })
        .unwrap_or_default();
    pairs.push((Value::from(name), value));
    Value::from_pairs(pairs)
}
