//! Validation of `run`'s flags into [`Settings`]: [`RunArgs::into_settings`]
//! and [`RunArgs::validate`] collect every [`Problem`] (as [`Parsed`] when
//! none stops `run`), with the host checks they need (`host`).

use super::{
    DEFAULT_INPUT, DEFAULT_SYSLOG_INPUT, MAX_INPUTS, MAX_OUTPUT_WORKERS, OnInvalidArg, OtlpAckArg,
    RunArgs,
};
use crate::config::{
    self, Format, InputDefaults, InputSpec, OnInvalid, OtlpAck, OtlpSettings, OutputKind,
    OutputSpec, Settings, StartFrom,
};

mod host;
use host::{check_output_directory, check_outputs_are_not_inputs, relative};
use std::time::Duration;

/// The outcome of reading the command line.
pub(crate) struct Parsed {
    pub settings: Settings,
    /// The embedded default is running (no --input was given).
    pub embedded_default: bool,
}

/// A problem that validation found. Validation goes on past each one, so
/// `check` can list them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The settings are wrong as written: `run` and `check` exit 2.
    Invalid(String),
    /// The host lacks something `run` needs at start (an output's directory,
    /// a literal input file); the message says how to make it. `run` refuses
    /// to start; `check` only warns, because the config itself is valid and
    /// the service's unit (LogsDirectory=) or the operator creates it.
    MissingOnHost(String),
    /// Advice that only `check` gives, such as a relative path.
    Advice(String),
}

impl Problem {
    fn message(&self) -> &str {
        match self {
            Problem::Invalid(message)
            | Problem::MissingOnHost(message)
            | Problem::Advice(message) => message,
        }
    }

    fn with_message(&self, message: String) -> Problem {
        match self {
            Problem::Invalid(_) => Problem::Invalid(message),
            Problem::MissingOnHost(_) => Problem::MissingOnHost(message),
            Problem::Advice(_) => Problem::Advice(message),
        }
    }
}

/// What `run` prints for the problems that stop it: the first, on one line,
/// and how many more there are (`check` lists them all).
pub(crate) fn first_of(problems: &[String]) -> String {
    let first = problems.first().map_or("invalid settings", String::as_str);
    match problems.len() {
        0 | 1 => first.to_string(),
        n => format!(
            "{first} (and {} more; 'ringway check' with the same arguments lists every one)",
            n - 1
        ),
    }
}

/// Smallest `--stats-interval` other than 0 (off): shorter floods stderr
/// without telling more.
const MIN_STATS_INTERVAL: Duration = Duration::from_millis(100);

impl RunArgs {
    /// The validated settings for `run`: every problem but advice stops it;
    /// the message is the first (with a count of the rest), and names the
    /// config key that caused it.
    pub fn into_settings(self) -> Result<Parsed, String> {
        let (parsed, problems) = self.validate();
        let stopping: Vec<String> = problems
            .iter()
            .filter(|problem| !matches!(problem, Problem::Advice(_)))
            .map(|problem| problem.message().to_string())
            .collect();
        match parsed {
            Some(parsed) if stopping.is_empty() => Ok(parsed),
            _ => Err(first_of(&stopping)),
        }
    }

    /// Every problem of these settings, each naming the config key that
    /// caused it (and showing a value from the environment as the `${VAR}`
    /// it came from); the settings when none of them is [`Problem::Invalid`].
    pub fn validate(mut self) -> (Option<Parsed>, Vec<Problem>) {
        let loaded = self.loaded.take();
        let (parsed, problems) = self.settings_from_flags(loaded.as_ref());
        let problems = problems
            .into_iter()
            .map(|problem| {
                let message = problem.message();
                match loaded.as_ref() {
                    Some(config) => {
                        let message = match config.blame(message) {
                            Some(blame) => format!("{message} {blame}"),
                            None => message.to_string(),
                        };
                        problem.with_message(config.redact(&message))
                    }
                    None => problem,
                }
            })
            .collect();
        (parsed, problems)
    }

    fn settings_from_flags(
        self,
        loaded: Option<&crate::config_file::ConfigFile>,
    ) -> (Option<Parsed>, Vec<Problem>) {
        let mut problems = Vec::new();
        macro_rules! invalid {
            ($message:expr $(,)?) => {
                problems.push(Problem::Invalid($message))
            };
        }
        let embedded_default = self.inputs.is_empty();
        if embedded_default && self.exit_on_eof {
            invalid!(
                "--exit-on-eof needs a file or stdin input (--input file:PATH or --input stdin); the embedded default only tails"
                    .to_string(),
            );
        }
        if let Err(error) = positive("--udp-sockets", self.udp_sockets, config::MAX_UDP_SOCKETS) {
            invalid!(error);
        }
        if !(1..=crate::config::MAX_UDP_PAYLOAD).contains(&self.udp_max_datagram) {
            invalid!(format!(
                "--udp-max-datagram must be between 1 and {} bytes",
                crate::config::MAX_UDP_PAYLOAD
            ));
        }
        for (flag, value, max) in [
            ("--ring-io-to-cpu", self.ring_io_to_cpu, 1 << 16),
            (
                "--ring-cpu-to-dispatcher",
                self.ring_cpu_to_dispatcher,
                1 << 16,
            ),
            (
                "--ring-dispatcher-to-worker",
                self.ring_dispatcher_to_worker,
                1 << 16,
            ),
            ("--output-workers", self.output_workers, MAX_OUTPUT_WORKERS),
            ("--max-open-files", self.max_open_files, 1 << 20),
            ("--otlp-max-connections", self.otlp_max_connections, 1 << 16),
            ("--tcp-max-connections", self.tcp_max_connections, 1 << 16),
        ] {
            if let Err(error) = positive(flag, value, max) {
                invalid!(error);
            }
        }
        if !(8..=32768).contains(&self.uring_depth) {
            invalid!(format!(
                "--uring-depth must be between 8 and 32768, not {}",
                self.uring_depth
            ));
        }
        if self.max_line == 0 || self.max_line > 1 << 30 {
            invalid!("--max-line must be between 1 byte and 1GiB".to_string());
        }
        if self.read_buf < 4096 || self.read_buf > 1 << 30 {
            invalid!("--read-buf must be between 4KiB and 1GiB".to_string());
        }
        if self.batch_bytes == 0 {
            invalid!("--batch-bytes must be at least 1 byte".to_string());
        }
        if self.max_body < 64 || self.max_body > 1 << 30 {
            invalid!("--max-body must be between 64 bytes and 1GiB".to_string());
        }
        if self.otlp_read_timeout.is_zero() {
            invalid!("--otlp-read-timeout must be above 0".to_string());
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            invalid!("--retry-initial must be above 0 and at most --retry-max".to_string());
        }
        if self.tls_handshake_timeout.is_zero() {
            invalid!("--tls-handshake-timeout must be above 0".to_string());
        }
        if self.output_timeout.is_zero() {
            invalid!("--output-timeout must be above 0".to_string());
        }
        if !self.stats_interval.is_zero() && self.stats_interval < MIN_STATS_INTERVAL {
            invalid!(format!(
                "--stats-interval must be 0 (off) or at least {}, not {}",
                config::format_duration(MIN_STATS_INTERVAL),
                config::format_duration(self.stats_interval)
            ));
        }

        let defaults = InputDefaults {
            format: self.format,
            from: self.from,
            udp_rcvbuf_bytes: self.udp_rcvbuf,
            udp_sockets: self.udp_sockets,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_client_ca: self.tls_client_ca.clone(),
        };
        let mut inputs: Vec<InputSpec> = Vec::new();
        if embedded_default {
            let tail_defaults = InputDefaults {
                format: Format::Raw,
                from: StartFrom::End,
                ..defaults.clone()
            };
            for spec in [DEFAULT_INPUT, DEFAULT_SYSLOG_INPUT] {
                match config::parse_input_spec(spec, &tail_defaults) {
                    Ok(input) => inputs.push(input),
                    Err(error) => invalid!(error),
                }
            }
        }
        // The transform (DESIGN §5): every query compiles now or nothing runs.
        if let Some(sql) = &self.sql
            && let Err(error) = crate::transform::Query::compile(sql)
        {
            invalid!(format!("--sql: {error}: {sql:?}"));
        }
        let config_sql: &[Option<String>] = loaded.map_or(&[], |config| &config.input_sql);
        for (index, spec) in self.inputs.iter().enumerate() {
            let input = match config::parse_input_spec(spec, &defaults) {
                Ok(input) => input,
                Err(error) => {
                    invalid!(error);
                    continue;
                }
            };
            if let Some(pattern) = input.file_pattern() {
                if let Err(error) = crate::pattern::check_pattern(pattern, self.exit_on_eof) {
                    let message = format!("input '{spec}': {error}");
                    // A literal file that is not there yet is the host's
                    // business, not the config's.
                    if std::fs::metadata(pattern)
                        .is_err_and(|error| error.kind() == std::io::ErrorKind::NotFound)
                    {
                        problems.push(Problem::MissingOnHost(message));
                    } else {
                        problems.push(Problem::Invalid(message));
                    }
                }
                if !std::path::Path::new(pattern).is_absolute() {
                    problems.push(relative(&format!("input '{spec}'")));
                }
            }
            let mut input = input;
            // An input's own query wins over --sql.
            match config_sql.get(index).cloned().flatten() {
                Some(sql) => {
                    if let Err(error) = crate::transform::Query::compile(&sql) {
                        invalid!(format!("input '{spec}' sql: {error}: {sql:?}"));
                    }
                    input.sql = Some(sql);
                }
                None => input.sql.clone_from(&self.sql),
            }
            inputs.push(input);
        }
        if embedded_default {
            for input in &mut inputs {
                input.sql.clone_from(&self.sql);
            }
        }
        for input in &inputs {
            if let config::InputKind::Otlp {
                auth_token_file: Some(path),
                ..
            } = &input.kind
                && let Err(error) = crate::auth::BearerTokens::load(path)
            {
                invalid!(format!("input '{}': {error}", input.name));
            }
        }
        problems.extend(check_tls(
            &inputs,
            inputs.len() == self.inputs.len() || embedded_default,
            &[
                ("--tls-cert", self.tls_cert.is_some()),
                ("--tls-key", self.tls_key.is_some()),
                ("--tls-client-ca", self.tls_client_ca.is_some()),
            ],
        ));
        let stdin_inputs = inputs
            .iter()
            .filter(|input| input.kind == config::InputKind::Stdin)
            .count();
        if stdin_inputs > 1 {
            invalid!("standard input can be read by one input only (--input stdin)".to_string());
        }
        if self.traffic_light && stdin_inputs > 0 {
            invalid!(
                "--traffic-light reads standard input, so --input stdin cannot be used with it"
                    .to_string()
            );
        }
        // Only when every --input parsed: a bad one is reported already.
        if self.exit_on_eof
            && !embedded_default
            && inputs.len() == self.inputs.len()
            && !inputs.iter().any(config::InputSpec::reaches_eof)
        {
            invalid!(
                "--exit-on-eof needs a file or stdin input (--input file:PATH or --input stdin); network inputs never reach EOF"
                    .to_string(),
            );
        }
        // Standard input ends; a run that reads nothing else ends with it,
        // as if --exit-on-eof were given.
        let exit_on_eof = self.exit_on_eof || stdin_inputs == inputs.len();
        if inputs.len() > MAX_INPUTS {
            invalid!(format!("at most {MAX_INPUTS} inputs are supported"));
        }
        let mut outputs: Vec<OutputSpec> = Vec::new();
        let mut directories = Vec::new();
        for spec in &self.outputs {
            match config::parse_output_spec(spec) {
                Ok(output) => {
                    if let OutputKind::File(path) = &output.kind {
                        directories.push((format!("output '{spec}'"), spec.clone(), path.clone()));
                    }
                    outputs.push(output);
                }
                Err(error) => invalid!(error),
            }
        }
        if outputs.is_empty() && self.outputs.is_empty() {
            outputs.push(config::parse_output_spec("stdout").expect("a valid SPEC"));
        }
        if let Err(error) =
            check_outputs_are_not_inputs(&inputs, &outputs, self.dead_letter.as_deref())
        {
            invalid!(error);
        }
        if outputs.len() > crate::config::MAX_OUTPUTS {
            invalid!(format!(
                "at most {} outputs are supported",
                crate::config::MAX_OUTPUTS
            ));
        }
        let file_routes = loaded.map_or(&[][..], |config| &config.output_where);
        for problem in apply_routes(&mut outputs, &self.routes, file_routes) {
            invalid!(problem);
        }
        let file_headers = loaded.map_or(&[][..], |config| &config.output_headers);
        for problem in apply_headers(&mut outputs, &self.output_headers, file_headers) {
            invalid!(problem);
        }
        problems.extend(check_output_tls(&outputs));
        let on_invalid = match self.on_invalid {
            OnInvalidArg::Drop => OnInvalid::Drop,
            OnInvalidArg::Raw => OnInvalid::Raw,
            OnInvalidArg::Deadletter => OnInvalid::DeadLetter,
        };
        if on_invalid == OnInvalid::DeadLetter && self.dead_letter.is_none() {
            invalid!("--on-invalid deadletter needs --dead-letter PATH".to_string());
        }
        if let Some(dir) = &self.data_dir
            && dir.exists()
            && !dir.is_dir()
        {
            invalid!(format!("--data-dir {} is not a directory", dir.display()));
        }
        if let Some(path) = &self.dead_letter {
            directories.push((
                "--dead-letter".to_string(),
                "--dead-letter".to_string(),
                path.clone(),
            ));
        }
        for (what, name, path) in &directories {
            problems.extend(check_output_directory(name, path));
            if !path.is_absolute() {
                problems.push(relative(what));
            }
        }
        for (what, path) in [
            ("--data-dir", &self.data_dir),
            ("--summary-json", &self.summary_json),
        ] {
            if let Some(path) = path
                && !path.is_absolute()
            {
                problems.push(relative(what));
            }
        }
        // Reported after every other check, so a bad key is named first.
        if embedded_default && let Some(path) = &self.config {
            problems.push(Problem::Invalid(format!(
                "config {} has no [[input]] table and no --input was given",
                path.display()
            )));
        }
        if problems
            .iter()
            .any(|problem| matches!(problem, Problem::Invalid(_)))
        {
            return (None, problems);
        }
        let mut settings = Settings {
            inputs,
            outputs,
            on_invalid,
            dead_letter: self.dead_letter,
            max_line_bytes: self.max_line,
            multiline_timeout: self.multiline_timeout,
            read_buffer_bytes: self.read_buf,
            batch_bytes: self.batch_bytes,
            batch_linger: self.batch_linger,
            io_to_cpu_capacity: self.ring_io_to_cpu,
            cpu_to_dispatcher_capacity: self.ring_cpu_to_dispatcher,
            dispatcher_to_worker_capacity: self.ring_dispatcher_to_worker,
            output_workers: self.output_workers,
            cpus: self.cpus.map(|list| list.0),
            uring_depth: self.uring_depth,
            sqpoll: self.sqpoll,
            max_open_files: self.max_open_files,
            udp_max_datagram_bytes: self.udp_max_datagram,
            retry_initial: self.retry_initial,
            retry_max: self.retry_max,
            output_timeout: self.output_timeout,
            stats_interval: (!self.stats_interval.is_zero()).then_some(self.stats_interval),
            stats_format: self.stats_format,
            exit_on_eof,
            summary_json: self.summary_json,
            shutdown_timeout: self.shutdown_timeout,
            data_dir: self.data_dir,
            checkpoint_interval: self.checkpoint_interval,
            fsync: self.fsync,
            otlp: OtlpSettings {
                ack: match self.otlp_ack {
                    OtlpAckArg::Accepted => OtlpAck::Accepted,
                    OtlpAckArg::Delivered => OtlpAck::Delivered,
                },
                // Whole seconds, rounded up: 1.5s asks for 2.
                retry_after_s: self.otlp_retry_after.as_secs()
                    + u64::from(self.otlp_retry_after.subsec_nanos() > 0),
                max_body_bytes: self.max_body,
                max_connections: self.otlp_max_connections,
                read_timeout: self.otlp_read_timeout,
                idle_timeout: self.otlp_idle_timeout,
            },
            tcp_max_connections: self.tcp_max_connections,
            tcp_idle_timeout: self.tcp_idle_timeout,
            tls_handshake_timeout: self.tls_handshake_timeout,
            metrics_address: self.metrics,
            traffic_light: self.traffic_light,
        };
        settings.batch_bytes = settings.batch_bytes.min(settings.buffer_bytes());
        (
            Some(Parsed {
                settings,
                embedded_default,
            }),
            problems,
        )
    }
}

/// Every TLS input's certificate and key, loaded as the input will load
/// them, so a missing, unreadable or invalid file stops `run` and `check`
/// at start. `--tls-cert`/`--tls-key`/`--tls-client-ca` without any `,tls` input is refused
/// (`all_parsed`: every input parsed, so none is missing from `inputs`):
/// the operator meant TLS somewhere, and the inputs would take plaintext.
fn check_tls(inputs: &[InputSpec], all_parsed: bool, tls_flags: &[(&str, bool)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut any_tls = false;
    for input in inputs {
        if let config::InputKind::Tcp {
            tls: Some(files), ..
        }
        | config::InputKind::Otlp {
            tls: Some(files), ..
        } = &input.kind
        {
            any_tls = true;
            if let Err(error) = crate::tls::server_config(files) {
                problems.push(Problem::Invalid(format!("input '{}': {error}", input.name)));
            }
        }
    }
    let given: Vec<&str> = tls_flags
        .iter()
        .filter(|(_, given)| *given)
        .map(|(flag, _)| *flag)
        .collect();
    if !given.is_empty() && all_parsed && !any_tls {
        let verb = if given.len() == 1 { "is" } else { "are" };
        problems.push(Problem::Invalid(format!(
            "{} {verb} given but no input has ,tls (e.g. --input tcp:0.0.0.0:6514,tls or otlp:0.0.0.0:4318,tls); without it tcp: and otlp: inputs take plaintext",
            given.join("/")
        )));
    }
    problems
}

/// Whether `flag`'s N names one of the `count` outputs (1-based); `Err`
/// is the problem line.
fn output_exists(flag: &str, n: usize, count: usize) -> Result<(), String> {
    if n >= 1 && n <= count {
        return Ok(());
    }
    let there = match count {
        1 => "there is 1 output".to_string(),
        count => format!("there are {count} outputs"),
    };
    Err(format!(
        "{flag} {n}: there is no output {n} ({there}; N counts the outputs from 1)"
    ))
}

/// Sets each output's route from `--where N=EXPR` (N: the output's 1-based
/// position) or, for an output without one, its `[[output]] where` key
/// (`from_file`, one per `[[output]]`); every route must compile. Returns
/// the problems, one line each.
fn apply_routes(
    outputs: &mut [OutputSpec],
    routes: &[String],
    from_file: &[Option<String>],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut given = vec![false; outputs.len()];
    for route in routes {
        let parsed = route
            .split_once('=')
            .map(|(n, expr)| (n.trim().parse::<usize>(), expr));
        let (n, expr) = match parsed {
            Some((Ok(n), expr)) => (n, expr),
            _ => {
                problems.push(format!(
                    "--where {route:?}: not N=EXPR (N: the output's position among the --output flags, from 1)"
                ));
                continue;
            }
        };
        if let Err(problem) = output_exists("--where", n, outputs.len()) {
            problems.push(problem);
            continue;
        }
        if given[n - 1] {
            problems.push(format!(
                "--where {n}: given twice (one condition per output; combine them with OR)"
            ));
            continue;
        }
        given[n - 1] = true;
        if let Err(error) = crate::transform::Condition::compile(expr) {
            problems.push(format!("--where {n}: {error}: {expr:?}"));
        }
        outputs[n - 1].route = Some(expr.to_string());
    }
    for (index, output) in outputs.iter_mut().enumerate() {
        // --where on the command line wins over the file's key.
        let Some(expr) = from_file.get(index).cloned().flatten() else {
            continue;
        };
        if given[index] {
            continue;
        }
        if let Err(error) = crate::transform::Condition::compile(&expr) {
            problems.push(format!("output '{}' where: {error}: {expr:?}", output.name));
        }
        output.route = Some(expr);
    }
    problems
}

/// Sets each output's request headers: its `[[output]] headers`
/// (`from_file`, one list per `[[output]]`), then
/// `--output-header N=NAME: VALUE` (N: the output's 1-based position),
/// which replaces a header of the same name from the file. Only HTTP and
/// OTLP outputs take headers; each is checked by `config::parse_header`.
/// Returns the problems, one line each (never a header's value: it may
/// be a secret).
fn apply_headers(
    outputs: &mut [OutputSpec],
    given: &[String],
    from_file: &[Vec<(String, String)>],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (output, headers) in outputs.iter_mut().zip(from_file) {
        for (name, value) in headers {
            match config::parse_header(name, value) {
                Ok(header) => output.headers.push(header),
                Err(error) => problems.push(format!("output '{}' headers: {error}", output.name)),
            }
        }
    }
    let mut from_command_line = vec![Vec::<String>::new(); outputs.len()];
    for text in given {
        let parsed = text.split_once('=').and_then(|(n, header)| {
            let (name, value) = header.split_once(':')?;
            Some((n.trim().parse::<usize>().ok()?, name.trim(), value))
        });
        let Some((n, name, value)) = parsed else {
            // The text is not echoed: it may hold a secret.
            problems.push(
                "--output-header: not N=NAME: VALUE (N: the output's position among the --output flags, from 1; e.g. 1=\"Authorization: Bearer abc\")"
                    .to_string(),
            );
            continue;
        };
        if let Err(problem) = output_exists("--output-header", n, outputs.len()) {
            problems.push(problem);
            continue;
        }
        let output = &mut outputs[n - 1];
        if !matches!(output.kind, OutputKind::Http(_) | OutputKind::Otlp(_)) {
            problems.push(format!(
                "--output-header {n}: output '{}' is not an http or otlp output (headers go with HTTP requests)",
                output.name
            ));
            continue;
        }
        let header = match config::parse_header(name, value) {
            Ok(header) => header,
            Err(error) => {
                problems.push(format!("--output-header {n}: {error}"));
                continue;
            }
        };
        if from_command_line[n - 1]
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(&header.name))
        {
            problems.push(format!(
                "--output-header {n}: {} is given twice",
                header.name
            ));
            continue;
        }
        from_command_line[n - 1].push(header.name.clone());
        output
            .headers
            .retain(|old| !old.name.eq_ignore_ascii_case(&header.name));
        output.headers.push(header);
    }
    problems
}

/// Every TLS output's client set-up, built as the output will build it,
/// so a missing, unreadable or invalid `ca=`, `cert=` or `key=` (or a
/// system without CA certificates) stops `run` and `check` at start; and
/// the warning for `insecure_skip_verify=true`. A kafka output's files are
/// read here by rustls as they are for the other outputs (librdkafka reads
/// them again with OpenSSL when it makes its producer); and a SASL PLAIN
/// password sent without TLS is warned about.
fn check_output_tls(outputs: &[OutputSpec]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for output in outputs {
        if let OutputKind::Kafka(target) = &output.kind
            && target.tls.is_none()
            && target
                .sasl
                .as_ref()
                .is_some_and(|sasl| sasl.mechanism == crate::config::KafkaSaslMechanism::Plain)
        {
            problems.push(Problem::Advice(format!(
                "output '{}': sasl=plain without tls sends the password to the brokers in the clear (add tls, or use sasl=scram-sha-512)",
                output.name
            )));
        }
        let host = match &output.kind {
            OutputKind::Kafka(target) => Some(target.first_host()),
            kind => kind.host(),
        };
        let (Some(options), Some(host)) = (output.kind.tls(), host) else {
            continue;
        };
        let http = matches!(output.kind, OutputKind::Http(_) | OutputKind::Otlp(_));
        if let Err(error) = crate::tls::connector(options, host, http) {
            problems.push(Problem::Invalid(format!(
                "output '{}': {error}",
                output.name
            )));
        }
        if options.insecure_skip_verify {
            problems.push(Problem::Advice(format!(
                "output '{}': insecure_skip_verify=true: the server's certificate is not checked, so anyone on the path can read and change what it sends",
                output.name
            )));
        }
    }
    problems
}

fn positive(flag: &str, value: usize, max: usize) -> Result<(), String> {
    if value == 0 || value > max {
        return Err(format!("{flag} must be between 1 and {max}, not {value}"));
    }
    Ok(())
}
