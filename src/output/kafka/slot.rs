//! What became of each line of a worker's batch in hand ([`Slot`]): set by
//! the worker as it hands lines to the producer, and by the output's
//! report server as the broker acknowledges them.

use rdkafka::error::RDKafkaErrorCode;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What became of one line of the batch in hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Line {
    /// Not handed to the producer (yet, or again after a new producer).
    Pending = 0,
    /// Handed to the producer: in its queue or on its way to the broker.
    InFlight = 1,
    /// Acknowledged by the broker.
    Delivered = 2,
    /// Refused for good; its error is in [`SlotState::refused`].
    Refused = 3,
}

/// Bits of a delivery report's opaque that hold the line's index; the
/// slot's index is above them.
const LINE_BITS: u32 = 40;

/// The opaque a line's delivery report brings back.
pub(super) fn opaque(slot: usize, line: usize) -> usize {
    (slot << LINE_BITS) | line
}

/// The slot and line of a delivery report's opaque.
pub(super) fn slot_and_line(opaque: usize) -> (usize, usize) {
    (opaque >> LINE_BITS, opaque & ((1 << LINE_BITS) - 1))
}

/// One worker's batch state, shared with the report server.
#[derive(Default)]
pub(super) struct Slot {
    state: Mutex<SlotState>,
    /// Signalled when reports changed the state.
    changed: Condvar,
}

impl Slot {
    pub fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits up to `timeout` for a change of the state.
    pub fn wait<'a>(
        &self,
        state: MutexGuard<'a, SlotState>,
        timeout: Duration,
    ) -> MutexGuard<'a, SlotState> {
        self.changed
            .wait_timeout(state, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    pub fn notify(&self) {
        self.changed.notify_all();
    }
}

/// The status of each line of a batch; the vector grows to the largest
/// batch's line count and is reused.
#[derive(Default)]
pub(super) struct SlotState {
    pub status: Vec<Line>,
    /// Lines in [`Line::InFlight`].
    pub in_flight: usize,
    /// The error of the last line refused for good.
    pub refused: Option<RDKafkaErrorCode>,
    /// The last retriable error a delivery report carried.
    pub retriable: Option<RDKafkaErrorCode>,
    /// The generation of the producer the lines in flight went to:
    /// reports of another producer are not this batch's any more.
    pub generation: u64,
}

impl SlotState {
    /// A new batch of `lines` lines, none handed yet.
    pub fn reset(&mut self, lines: usize) {
        self.status.clear();
        self.status.resize(lines, Line::Pending);
        self.in_flight = 0;
        self.refused = None;
        self.retriable = None;
    }

    pub fn set(&mut self, index: usize, line: Line) {
        let Some(status) = self.status.get_mut(index) else {
            return;
        };
        match (*status == Line::InFlight, line == Line::InFlight) {
            (false, true) => self.in_flight += 1,
            (true, false) => self.in_flight -= 1,
            _ => {}
        }
        *status = line;
    }

    pub fn refuse(&mut self, index: usize, code: RDKafkaErrorCode) {
        self.set(index, Line::Refused);
        self.refused = Some(code);
    }

    /// A delivery report of line `index`: acknowledged, refused for good,
    /// or to go again. Only a line in flight takes one.
    pub fn report(&mut self, index: usize, code: RDKafkaErrorCode) {
        if self.status.get(index) != Some(&Line::InFlight) {
            return;
        }
        match code {
            RDKafkaErrorCode::NoError => self.set(index, Line::Delivered),
            code if super::permanent(code) => self.refuse(index, code),
            code => {
                // Purged or failed for now: it goes again on the next try.
                self.set(index, Line::Pending);
                if !matches!(
                    code,
                    RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight
                ) {
                    self.retriable = Some(code);
                }
            }
        }
    }

    /// After the producer was replaced: what the old one held goes again.
    pub fn requeue_in_flight(&mut self) {
        for status in &mut self.status {
            if *status == Line::InFlight {
                *status = Line::Pending;
            }
        }
        self.in_flight = 0;
    }

    /// Lines not yet acknowledged nor refused.
    pub fn waiting(&self) -> usize {
        self.status
            .iter()
            .filter(|status| matches!(status, Line::InFlight | Line::Pending))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaques_carry_slot_and_line_back() {
        for (slot, line) in [(0, 0), (1, 5), (255, (1 << LINE_BITS) - 1), (3, 1 << 20)] {
            assert_eq!(slot_and_line(opaque(slot, line)), (slot, line));
        }
    }

    #[test]
    fn only_lines_in_flight_take_a_report() {
        let mut state = SlotState::default();
        state.reset(3);
        state.set(0, Line::InFlight);
        state.set(1, Line::InFlight);
        assert_eq!(state.in_flight, 2);
        state.report(0, RDKafkaErrorCode::NoError);
        // A late report of a line already acknowledged, or never handed.
        state.report(0, RDKafkaErrorCode::PurgeInflight);
        state.report(2, RDKafkaErrorCode::NoError);
        assert_eq!(
            state.status,
            [Line::Delivered, Line::InFlight, Line::Pending]
        );
        state.report(1, RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(state.status[1], Line::Refused);
        assert_eq!(state.in_flight, 0);
        assert_eq!(state.waiting(), 1);
    }
}
