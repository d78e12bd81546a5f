//! A run's summary, kept in its row as its records land so that `runbook runs` reads one row
//! per run instead of folding every journal: how its last process ended (none while a process
//! drives it, or after one died) and when it last ended, as [`crate::state::Timeline`] tells
//! them from the whole journal.

use jiff::Timestamp;

use crate::exec::RunStatus;
use crate::state::journal::Record;

/// The summary columns of a run's row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// How the run's last process recorded its end; `None` until it does.
    pub ended: Option<RunStatus>,
    /// When a process of the run last recorded its end.
    pub finished_at: Option<Timestamp>,
}

impl Summary {
    /// The summary after `record`.
    pub fn apply(&mut self, record: &Record) {
        match record {
            // A process takes the run over: it has not ended.
            Record::RunStarted { .. } | Record::Resumed { .. } => self.ended = None,
            Record::RunFinished { status, at } => {
                self.ended = Some(*status);
                self.finished_at = Some(*at);
            }
            _ => {}
        }
    }

    /// `ended` as stored.
    pub fn ended_text(&self) -> Option<&'static str> {
        self.ended.map(RunStatus::as_str)
    }
}

/// A stored `ended` read back.
pub fn parse_status(text: &str) -> Option<RunStatus> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::timeline::Timeline;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    #[test]
    fn the_summary_agrees_with_the_timeline() {
        let started = Record::RunStarted {
            v: crate::state::journal::FORMAT_VERSION,
            run_id: "r".to_owned(),
            runbook: "b".to_owned(),
            source: "b.yaml".to_owned(),
            hash: "h".to_owned(),
            steps: serde_json::Map::new(),
            fingerprint: 1,
            order: Vec::new(),
            at: at(0),
            pid: 1,
            user: "alice".to_owned(),
            host: None,
        };
        let resumed = Record::Resumed {
            at: at(20),
            pid: 2,
            user: "bob".to_owned(),
            host: None,
        };
        let journal = [
            started,
            Record::RunFinished {
                status: RunStatus::Paused,
                at: at(10),
            },
            resumed.clone(),
            Record::RunFinished {
                status: RunStatus::Failed,
                at: at(30),
            },
            resumed,
        ];
        let mut summary = Summary::default();
        for (n, record) in journal.iter().enumerate() {
            summary.apply(record);
            let timeline = Timeline::from_records(journal[..=n].iter().cloned());
            assert_eq!(summary.ended, timeline.recorded_end().map(|e| e.status));
            assert_eq!(summary.finished_at, timeline.finished_at(), "after {n}");
        }
        assert_eq!(summary.ended_text(), None);
        assert_eq!(parse_status("paused"), Some(RunStatus::Paused));
        assert_eq!(parse_status("bogus"), None);
    }
}
