//! Outputs: the dispatcher, the output workers and their sinks.
//!
//! [`dispatcher::Dispatcher`] (ring(16) → ring(1) slots, MRU choice,
//! fan-out) feeds the [`worker::OutputWorker`]s (retry, Retry-After,
//! dead-letter, in-order commit), which write to a [`sink::Sink`]: a file
//! ([`file::FileSink`]), stdout, a TCP connection ([`tcp::TcpSink`]), or
//! HTTP POSTs through the client in `http`, with OTLP protobuf bodies
//! encoded by `otlp`.

pub(crate) mod connect;
pub(crate) mod dispatcher;
pub(crate) mod file;
pub(crate) mod http;
pub(crate) mod otlp;
pub(crate) mod sink;
pub(crate) mod tcp;
pub(crate) mod worker;

/// Days from 1970-01-01 to a proleptic Gregorian date, for dates from 1970
/// on (H. Hinnant's `days_from_civil`); `None` for an impossible month or
/// a year before 1970.
pub(crate) fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
        return None;
    }
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March is 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(super::days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(super::days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(super::days_from_civil(2024, 2, 29), Some(19_782));
        assert_eq!(super::days_from_civil(1969, 12, 31), None);
        assert_eq!(super::days_from_civil(2024, 13, 1), None);
    }
}
