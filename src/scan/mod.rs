//! The scanners the CPU worker ([`crate::cpu_worker`]) runs over a batch:
//! [`frame`] counts lines, [`cri`] splits Kubernetes container lines, [`json`] checks JSON lines
//! ([`json::JsonChecker`]), [`syslog`] turns syslog messages into JSON
//! ([`syslog::SyslogParser`]).

pub(crate) mod cri;
pub(crate) mod frame;
pub(crate) mod json;
pub(crate) mod multiline;
pub(crate) mod syslog;
