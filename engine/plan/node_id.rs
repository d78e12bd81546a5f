//! A graph node's id: the path of steps through calls and blocks, each step with the key of its
//! item when it fans out. `stop`, `stop[1]`, `restart[es-1]`, `restore_zk.export`,
//! `rolling[2].restart`. One way to build an id and one way to read it back: journals, logs,
//! `--rerun` and `--approve` all use this spelling.

use std::fmt;
use std::sync::Arc;

/// A node's full id. Cheap to clone (shared text).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

/// The key of one item of a fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKey<'a> {
    /// Position in a `for_each` list.
    Index(usize),
    /// A host of an `on:` list: its name, or its destination (`user@10.0.0.7:2222`).
    Host(&'a str),
    /// Any item: a fan-out whose list is unknown while validating (`restore[*].fetch`).
    Any,
}

impl fmt::Display for ItemKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "{i}"),
            Self::Host(h) => f.write_str(h),
            Self::Any => f.write_str("*"),
        }
    }
}

impl<'a> ItemKey<'a> {
    /// Reads a key as written between brackets.
    fn read(text: &'a str) -> Self {
        if text == "*" {
            Self::Any
        } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse().map_or(Self::Host(text), Self::Index)
        } else {
            Self::Host(text)
        }
    }

    /// Whether text can be a host key: not empty, no brackets, no whitespace.
    pub fn is_valid_host(text: &str) -> bool {
        !text.is_empty()
            && !text
                .chars()
                .any(|c| c == '[' || c == ']' || c.is_whitespace() || c.is_control())
    }
}

/// One step of a node's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The step's id in its runbook.
    pub step: &'a str,
    /// The item, when the step fans out.
    pub item: Option<ItemKey<'a>>,
}

/// Why a text is not a node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a step id: {reason}")]
pub struct NodeIdError {
    /// The text.
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl NodeId {
    /// A step of the root runbook.
    pub fn step(id: &str) -> Self {
        Self(Arc::from(id))
    }

    /// A step inside this group (a call or a block): `group.step`.
    #[must_use]
    pub fn child(&self, step: &str) -> Self {
        Self(Arc::from(format!("{}.{step}", self.0)))
    }

    /// A step inside `group`, or of the root runbook when there is no group.
    pub fn within(group: Option<&Self>, step: &str) -> Self {
        group.map_or_else(|| Self::step(step), |g| g.child(step))
    }

    /// One item of this fan-out: `step[key]`.
    #[must_use]
    pub fn item(&self, key: ItemKey<'_>) -> Self {
        Self(Arc::from(format!("{}[{key}]", self.0)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads an id back (from a journal, `--rerun`, `--approve`).
    pub fn parse(text: &str) -> Result<Self, NodeIdError> {
        let bad = |reason| NodeIdError {
            text: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut depth = 0usize;
        let mut segment_start = true;
        for c in text.chars() {
            match c {
                '[' if depth == 0 && !segment_start => depth = 1,
                '[' => return Err(bad("a `[` out of place")),
                ']' if depth == 1 => depth = 0,
                ']' => return Err(bad("a `]` without its `[`")),
                '.' if depth == 0 => {
                    if segment_start {
                        return Err(bad("an empty step name"));
                    }
                    segment_start = true;
                    continue;
                }
                _ if depth == 0 && !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') => {
                    return Err(bad("step names are snake_case"));
                }
                _ => {}
            }
            segment_start = false;
        }
        if depth != 0 {
            return Err(bad("a `[` without its `]`"));
        }
        if segment_start {
            return Err(bad("an empty step name"));
        }
        Ok(Self(Arc::from(text)))
    }

    /// The steps of the path, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        split_segments(&self.0).map(|raw| match raw.split_once('[') {
            Some((step, rest)) => Segment {
                step,
                item: Some(ItemKey::read(rest.strip_suffix(']').unwrap_or(rest))),
            },
            None => Segment {
                step: raw,
                item: None,
            },
        })
    }

    /// The last step of the path.
    pub fn last(&self) -> Segment<'_> {
        self.segments().last().unwrap_or(Segment {
            step: &self.0,
            item: None,
        })
    }

    /// The item key of the last step, when this node is an item of a fan-out.
    pub fn item_key(&self) -> Option<ItemKey<'_>> {
        self.last().item
    }

    /// The fan-out an item belongs to (`fan[2]` → `fan`); `None` for a node that is no item.
    pub fn fan_out(&self) -> Option<Self> {
        self.item_key()?;
        let cut = self.0.rfind('[')?;
        Some(Self(Arc::from(&self.0[..cut])))
    }

    /// The group (call or block, or one item of a fanned-out group) this node is inside.
    pub fn group(&self) -> Option<Self> {
        let last = split_segments(&self.0).last()?;
        let cut = self.0.len().checked_sub(last.len() + 1)?;
        Some(Self(Arc::from(&self.0[..cut])))
    }

    /// Whether this node is `other`, one of its items, or inside it (a step of a group, or of
    /// an item of a fanned-out group).
    pub fn is_within(&self, other: &Self) -> bool {
        let (me, them) = (self.as_str(), other.as_str());
        me == them
            || me
                .strip_prefix(them)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    }
}

/// Splits an id at the dots that separate steps (not those inside an item key).
fn split_segments(text: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0usize;
    let mut start = 0;
    let mut pieces = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces.into_iter()
}

impl fmt::Display for NodeId {
    /// The id as written; a width (`{:12}`) pads it, so tables line up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl std::ops::Deref for NodeId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for NodeId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for NodeId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_width_pads_an_id_so_tables_line_up() {
        let id = NodeId::step("first");
        assert_eq!(format!("[{id:8}]"), "[first   ]");
        assert_eq!(format!("[{id:>8}]"), "[   first]");
    }

    #[test]
    fn ids_are_built_and_read_back_the_same_way() {
        let call = NodeId::step("rolling").item(ItemKey::Host("core@10.0.0.7:2222"));
        let inner = call.child("restart").item(ItemKey::Index(3));
        assert_eq!(inner.as_str(), "rolling[core@10.0.0.7:2222].restart[3]");
        let parsed = NodeId::parse(inner.as_str()).unwrap();
        assert_eq!(parsed, inner);
        let segments: Vec<Segment<'_>> = parsed.segments().collect();
        assert_eq!(
            segments,
            [
                Segment {
                    step: "rolling",
                    item: Some(ItemKey::Host("core@10.0.0.7:2222"))
                },
                Segment {
                    step: "restart",
                    item: Some(ItemKey::Index(3))
                },
            ]
        );
        assert_eq!(parsed.item_key(), Some(ItemKey::Index(3)));
        assert_eq!(
            parsed.fan_out().unwrap().as_str(),
            "rolling[core@10.0.0.7:2222].restart"
        );
        assert_eq!(parsed.group().unwrap(), call);
        assert_eq!(NodeId::step("a").group(), None);
        assert_eq!(NodeId::step("a").fan_out(), None);
    }

    #[test]
    fn within_means_the_node_its_items_or_its_inside() {
        let fan = NodeId::step("fan");
        assert!(NodeId::parse("fan[2]").unwrap().is_within(&fan));
        assert!(NodeId::parse("fan.x").unwrap().is_within(&fan));
        assert!(fan.is_within(&fan));
        assert!(!NodeId::parse("fanatic").unwrap().is_within(&fan));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in ["", "a..b", "a[1", "a]", "[1]", "a.", "Stop", "a b"] {
            assert!(NodeId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(NodeId::parse("a[*].b").is_ok());
        assert_eq!(
            NodeId::parse("a[*]").unwrap().item_key(),
            Some(ItemKey::Any)
        );
    }
}
