//! Tests of [`SyslogParser`](super::SyslogParser): RFC 3164 and RFC 5424
//! messages in, the JSON objects they become out, and the size bound.

use super::*;
use serde_json::{Value, json};

/// Converts into a buffer of exactly the promised size and checks the
/// framing every record must have; returns the raw JSON line.
fn convert_line(message: &[u8]) -> (String, bool) {
    let mut parser = SyslogParser::new();
    let mut out = vec![0u8; SyslogParser::max_json_bytes(message.len())];
    let (written, parsed) = parser.write_json(message, &mut out);
    assert!(written > 0, "a record is always written");
    let line = std::str::from_utf8(&out[..written])
        .unwrap_or_else(|error| panic!("output is not UTF-8 ({error}) for {message:?}"))
        .to_owned();
    assert!(line.ends_with('\n'), "one record ends with a newline");
    assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
    (line, parsed)
}

fn convert(message: &[u8]) -> (Value, bool) {
    let (line, parsed) = convert_line(message);
    let value: Value = serde_json::from_str(&line)
        .unwrap_or_else(|error| panic!("invalid JSON ({error}): {line}"));
    assert!(value.is_object());
    if parsed {
        assert!(value.get("parse_error").is_none());
    } else {
        assert_eq!(value["parse_error"], json!(true));
        assert_eq!(value.as_object().map(|object| object.len()), Some(2));
    }
    (value, parsed)
}

/// [`convert`] of a message that must parse.
fn parses(message: &[u8]) -> Value {
    must_parse(convert(message), message)
}

/// Asserts that `message` parses and converts to exactly `line`.
fn assert_parses_to(message: &[u8], line: &str) {
    assert_eq!(must_parse(convert_line(message), message), line);
}

fn must_parse<T>((converted, parsed): (T, bool), message: &[u8]) -> T {
    let shown = String::from_utf8_lossy(message);
    assert!(parsed, "should parse: {shown:?}");
    converted
}

/// The messages of a file in testdata/: one a line, as written, or as a
/// JSON string when the line starts with `"` (for a message with white
/// space at an end, or starting with `"` or `#`); blank lines and lines
/// starting with `#` are skipped. A line that is not the JSON string it
/// starts as, or a file without a message, panics.
fn messages(file: &str, text: &str) -> Vec<Vec<u8>> {
    let messages: Vec<Vec<u8>> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(index, line)| {
            if !line.starts_with('"') {
                return line.as_bytes().to_vec();
            }
            serde_json::from_str::<String>(line)
                .unwrap_or_else(|error| panic!("{file}:{}: {error}: {line}", index + 1))
                .into_bytes()
        })
        .collect();
    assert!(!messages.is_empty(), "{file} has no message");
    messages
}

/// The [`messages`] of `testdata/FILE`.
macro_rules! testdata {
    ($file:literal) => {
        messages($file, include_str!(concat!("testdata/", $file)))
    };
}

fn assert_parse_error(message: &[u8]) {
    let (value, parsed) = convert(message);
    assert!(
        !parsed,
        "should not parse: {:?}",
        String::from_utf8_lossy(message)
    );
    let raw = String::from_utf8_lossy(trim_line_end(message)).into_owned();
    assert_eq!(value["message"], json!(raw));
}

#[test]
fn rfc3164_with_pri_writes_every_field_in_order() {
    assert_parses_to(
        b"<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick",
        concat!(
            r#"{"timestamp":"Oct 11 22:14:15","host":"mymachine","app":"su","procid":"230","#,
            r#""facility":"auth","severity":"crit","severity_code":2,"#,
            r#""message":"'su root' failed for lonvick"}"#,
            "\n"
        ),
    );
}

#[test]
fn rfc3164_without_pri_has_no_facility_or_severity() {
    assert_parses_to(
        b"Jun 14 15:16:01 combo kernel: Linux version 2.6.5",
        "{\"timestamp\":\"Jun 14 15:16:01\",\"host\":\"combo\",\"app\":\"kernel\",\"message\":\"Linux version 2.6.5\"}\n",
    );
}

#[test]
fn rfc3164_tags_are_read_leniently() {
    let value = parses(b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure");
    assert_eq!(value["app"], "sshd(pam_unix)");
    assert_eq!(value["procid"], "19939");
    assert_eq!(value["message"], "authentication failure");

    let value = parses(b"<13>Feb  5 17:32:18 10.0.0.99 app[12] no colon");
    assert_eq!(value["host"], "10.0.0.99");
    assert_eq!(value["app"], "app");
    assert_eq!(value["procid"], "12");
    assert_eq!(value["message"], "no colon");

    // A first word without a colon is message, not a tag.
    let value = parses(b"Jun 19 04:09:11 combo syslogd 1.4.1: restart.");
    assert!(value.get("app").is_none());
    assert_eq!(value["message"], "syslogd 1.4.1: restart.");

    let value = parses(b"Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2");
    assert!(value.get("app").is_none());
    assert_eq!(value["message"], "-- root[2421]: ROOT LOGIN ON tty2");

    // A tag with nothing after it: no message key.
    let value = parses(b"Jun 14 15:16:01 combo cron:");
    assert_eq!(value["app"], "cron");
    assert!(value.get("message").is_none());
}

#[test]
fn rfc3164_days_may_be_space_padded_or_not() {
    for timestamp in ["Jul  1 09:00:55", "Nov 9 12:01:01", "Dec 31 23:59:60"] {
        let value = parses(format!("{timestamp} host a: b").as_bytes());
        assert_eq!(value["timestamp"], timestamp);
        assert_eq!(value["host"], "host");
    }
}

#[test]
fn rfc3164_accepts_an_rfc3339_timestamp() {
    assert_parses_to(
        b"<14>2024-05-01T10:00:00.123+02:00 web-1 nginx: GET /",
        concat!(
            r#"{"timestamp":"2024-05-01T10:00:00.123+02:00","host":"web-1","app":"nginx","#,
            r#""facility":"user","severity":"info","severity_code":6,"message":"GET /"}"#,
            "\n"
        ),
    );
}

#[test]
fn rfc3164_without_timestamp_and_host_is_a_parse_error() {
    for message in testdata!("rfc3164_without_timestamp_or_host.txt") {
        assert_parse_error(&message);
    }
}

#[test]
fn rfc5424_full_message_with_structured_data_and_bom() {
    assert_parses_to(
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 \
          [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \
          \xEF\xBB\xBFAn application event log entry...",
        concat!(
            r#"{"timestamp":"2003-10-11T22:14:15.003Z","host":"mymachine.example.com","#,
            r#""app":"evntslog","procid":"1234","msgid":"ID47","#,
            r#""facility":"local4","severity":"notice","severity_code":5,"#,
            r#""structured_data":{"exampleSDID@32473":{"iut":"3","eventSource":"Application","eventID":"1011"}},"#,
            r#""message":"An application event log entry..."}"#,
            "\n"
        ),
    );
}

#[test]
fn rfc5424_multiple_sd_elements_and_escaped_values() {
    let value = parses(
        br#"<34>1 2003-10-11T22:14:15.003Z host app 1 ID [a@1 x="q\"uote" y="back\\slash" z="br\]acket" w="lone\n"][b@2][c@3 k="v" k2=""] msg"#,
    );
    assert_eq!(
        value["structured_data"],
        json!({
            "a@1": {"x": "q\"uote", "y": "back\\slash", "z": "br]acket", "w": "lone\\n"},
            "b@2": {},
            "c@3": {"k": "v", "k2": ""},
        })
    );
    assert_eq!(value["message"], "msg");
}

#[test]
fn rfc5424_nilvalues_omit_their_keys() {
    assert_parses_to(
        b"<13>1 - - - - - -",
        "{\"facility\":\"user\",\"severity\":\"notice\",\"severity_code\":5}\n",
    );
    let value = parses(b"<13>1 - host - 42 - - hello");
    assert_eq!(
        value,
        json!({"host": "host", "procid": "42", "facility": "user",
        "severity": "notice", "severity_code": 5, "message": "hello"})
    );
}

#[test]
fn rfc5424_without_pri_needs_a_real_timestamp() {
    let value =
        parses(b"1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time");
    assert_eq!(value["timestamp"], "2003-08-24T05:14:15.000003-07:00");
    assert_eq!(value["app"], "myproc");
    assert!(value.get("facility").is_none());
    assert_eq!(value["message"], "%% It's time");
    assert_parse_error(b"1 - host app - - - text");
}

#[test]
fn facility_and_severity_names_follow_pri() {
    for (pri, facility, severity, code) in [
        (0, "kern", "emerg", 0),
        (34, "auth", "crit", 2),
        (86, "authpriv", "info", 6),
        (124, "solaris-cron", "warning", 4),
        (165, "local4", "notice", 5),
        (191, "local7", "debug", 7),
    ] {
        let message = format!("<{pri}>1 - host - - - -");
        let value = parses(message.as_bytes());
        assert_eq!(value["facility"], facility, "{message}");
        assert_eq!(value["severity"], severity, "{message}");
        assert_eq!(value["severity_code"], code, "{message}");
    }
}

#[test]
fn bad_pri_is_a_parse_error() {
    for message in testdata!("bad_pri.txt") {
        assert_parse_error(&message);
    }
}

#[test]
fn truncated_rfc5424_header_is_a_parse_error() {
    let full = b"<34>1 2003-10-11T22:14:15.003Z host app 1 ID47 - msg";
    // Every cut before the SD loses a required field.
    let sd_start = full.len() - 5;
    for cut in 5..=sd_start {
        assert_parse_error(&full[..cut]);
    }
    for message in testdata!("bad_rfc5424_header.txt") {
        assert_parse_error(&message);
    }
}

#[test]
fn malformed_structured_data_is_a_parse_error() {
    for message in testdata!("malformed_structured_data.txt") {
        assert_parse_error(&message);
    }
}

#[test]
fn empty_message_is_a_flagged_empty_record() {
    for message in [&b""[..], b"\r", b"\r\n", b"\0\0\0", b"\n"] {
        let (line, parsed) = convert_line(message);
        assert!(!parsed);
        assert_eq!(line, "{\"message\":\"\",\"parse_error\":true}\n");
    }
}

#[test]
fn trailing_cr_newlines_and_nuls_are_stripped_and_spaces_kept() {
    let value = parses(b"Jun 14 15:16:01 combo su: ok \r\n\0\0");
    assert_eq!(value["message"], "ok ");
}

#[test]
fn control_characters_are_escaped() {
    assert_parses_to(
        b"<13>1 - h\x01 a - - - tab\there\rcr\x1b[0m\x7f\x00\"q\\",
        concat!(
            r#"{"host":"h\u0001","app":"a","facility":"user","severity":"notice","severity_code":5,"#,
            "\"message\":\"tab\\there\\rcr\\u001b[0m\x7f\\u0000\\\"q\\\\\"}\n"
        ),
    );
    let (line, _) = convert_line(b"a\nb");
    assert_eq!(line, "{\"message\":\"a\\nb\",\"parse_error\":true}\n");
}

#[test]
fn invalid_utf8_is_replaced_and_the_record_still_parses() {
    let (value, parsed) = convert(b"Jun 14 15:16:01 h\xff app[\xc3]: caf\xc3\xa9 \xe2\x82 end\xc3");
    assert!(parsed, "syntax decides parsing, not encoding");
    assert_eq!(value["host"], "h\u{fffd}");
    assert_eq!(value["procid"], "\u{fffd}");
    assert_eq!(value["message"], "café \u{fffd} end\u{fffd}");

    let value = parses(b"<34>1 - h a - - [x@1 k=\"\xff\\]\xfe\"] \xef\xbb\xbf\xff");
    assert_eq!(value["structured_data"]["x@1"]["k"], "\u{fffd}]\u{fffd}");
    assert_eq!(value["message"], "\u{fffd}");
}

#[test]
fn binary_garbage_gives_a_flagged_valid_record() {
    let garbage: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    let (value, parsed) = convert(&garbage);
    assert!(!parsed);
    let text = value["message"].as_str().expect("message is a string");
    assert!(text.contains('\u{fffd}'));
    assert!(text.starts_with('\u{fffd}'));
}

#[test]
fn largest_udp_payload_of_65507_bytes_converts() {
    let header = b"<14>1 2024-01-01T00:00:00Z host app - - - ";
    let mut message = header.to_vec();
    message.resize(65_507, b'x');
    message[60_000] = b'"';
    let value = parses(&message);
    assert_eq!(
        value["message"].as_str().map(str::len),
        Some(65_507 - header.len())
    );

    let worst = vec![1u8; 65_507];
    let (line, parsed) = convert_line(&worst);
    assert!(!parsed);
    assert!(line.len() <= SyslogParser::max_json_bytes(worst.len()));
    assert!(line.len() > 6 * 65_507, "every control byte is a \\u00XX");
}

#[test]
fn structure_dense_messages_stay_within_the_size_bound() {
    // Each of these turns short input into the most JSON punctuation;
    // `convert_line` gives them a buffer of exactly `max_json_bytes`.
    let elements = [&b"<0>1 - - - - - "[..], &b"[a]".repeat(2000)].concat();
    let params = [&b"<0>1 - - - - - [a"[..], &b" b=\"\"".repeat(2000), b"]"].concat();
    let escapes = [
        &b"<0>1 - - - - - [a b=\""[..],
        &b"\\\\".repeat(2000),
        b"\"]",
    ]
    .concat();
    for message in [elements, params, escapes] {
        parses(&message);
    }
}

#[test]
fn too_small_output_buffer_writes_nothing() {
    let mut parser = SyslogParser::new();
    let message = b"Jun 14 15:16:01 combo kernel: x";
    let mut out = vec![0u8; SyslogParser::max_json_bytes(message.len()) - 1];
    assert_eq!(parser.write_json(message, &mut out), (0, false));
    assert_eq!(parser.write_json(b"", &mut []), (0, false));
}

#[test]
fn word_at_a_time_escape_search_matches_byte_by_byte() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        let len = (xorshift(&mut state) % 40) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let random = xorshift(&mut state);
                // Mostly plain bytes, so the first escape lands anywhere.
                if random.is_multiple_of(16) {
                    (random >> 8) as u8
                } else {
                    b'a' + (random >> 8) as u8 % 26
                }
            })
            .collect();
        assert_eq!(
            crate::escape::find_json_escape(&bytes),
            bytes
                .iter()
                .position(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\'),
            "{bytes:?}"
        );
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_bytes_never_panic_and_always_give_valid_json() {
    const ALPHABET: &[u8] =
        b"<>0123456789 -[]\"=\\:TZ.+aJun\r\n\t\x00\x01\x7f\x80\xbf\xc3\xa9\xe2\xef\xbb\xff";
    const PREFIXES: [&[u8]; 6] = [
        b"",
        b"<34>",
        b"<34>1 ",
        b"<165>1 2003-10-11T22:14:15.003Z h a p m ",
        b"<13>Jun 14 15:16:01 ",
        b"Jun  1 15:16:01 host ",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut parsed_count = 0;
    for _ in 0..100_000 {
        let prefix = PREFIXES[(xorshift(&mut state) % 6) as usize];
        let len = (xorshift(&mut state) % 48) as usize;
        let mut message = prefix.to_vec();
        for _ in 0..len {
            let random = xorshift(&mut state);
            message.push(if random.is_multiple_of(8) {
                (random >> 8) as u8
            } else {
                ALPHABET[(random >> 8) as usize % ALPHABET.len()]
            });
        }
        let (line, parsed) = convert_line(&message);
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("invalid JSON ({error}) for {message:?}: {line}"));
        assert_eq!(value.get("parse_error").is_some(), !parsed, "{line}");
        parsed_count += usize::from(parsed);
    }
    assert!(
        parsed_count > 1000,
        "the fuzz reaches the parsers: {parsed_count}"
    );
}

#[test]
fn every_loghub_line_converts_and_syslog_style_ones_parse() {
    let directory = std::path::Path::new("../shared/data/loghub");
    if !directory.is_dir() {
        println!("skipped: no ../shared/data");
        return;
    }
    for (file, must_parse) in [
        ("Linux_2k.log", true),
        ("OpenSSH_2k.log", true),
        ("Thunderbird_2k.log", false),
    ] {
        let data = std::fs::read(directory.join(file)).expect("loghub file is readable");
        let mut lines = 0;
        for line in data
            .split(|&byte| byte == b'\n')
            .filter(|line| !line.is_empty())
        {
            let (value, parsed) = convert(line);
            lines += 1;
            if must_parse {
                assert!(parsed, "{file}: {}", String::from_utf8_lossy(line));
                assert!(value["host"].is_string() && value["timestamp"].is_string());
            } else {
                // Thunderbird's own prefix comes before the syslog header.
                assert!(!parsed, "{file}: {}", String::from_utf8_lossy(line));
                assert_eq!(
                    value["message"].as_str().map(str::as_bytes),
                    Some(trim_line_end(line))
                );
            }
        }
        assert_eq!(lines, 2000, "{file}");
    }

    let (value, _) = convert(
        b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 \r",
    );
    assert_eq!(
        value,
        json!({"timestamp": "Jun 14 15:16:01", "host": "combo", "app": "sshd(pam_unix)",
            "procid": "19939",
            "message": "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 "})
    );
    let (value, _) =
        convert(b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\r");
    assert_eq!(
        (&value["host"], &value["app"], &value["procid"]),
        (&json!("LabSZ"), &json!("sshd"), &json!("24200"))
    );
    let (value, _) = convert(b"Jul 27 14:41:57 combo syslog: syslogd startup succeeded\r");
    assert_eq!(
        (&value["app"], &value["message"]),
        (&json!("syslog"), &json!("syslogd startup succeeded"))
    );
}

#[test]
fn converting_messages_allocates_nothing_after_warm_up() {
    let messages: Vec<Vec<u8>> = (0..1000)
        .map(|i| match i % 5 {
            0 => format!("Jun 14 15:16:{:02} combo sshd(pam_unix)[{i}]: authentication failure\r", i % 60).into_bytes(),
            1 => format!("<165>1 2003-10-11T22:14:15.003Z host app {i} ID [a@1 k=\"v\\\"{i}\"][b@2] \u{feff}msg {i}").into_bytes(),
            2 => format!("<{}>Jun  1 00:00:00 h a: caf\u{e9}\t\"{i}\"", i % 192).into_bytes(),
            3 => [&b"Jun 14 15:16:01 h\xff a: \xc3"[..], i.to_string().as_bytes()].concat(),
            _ => format!("<999>garbage {i}").into_bytes(),
        })
        .collect();
    let mut parser = SyslogParser::new();
    let mut out = vec![0u8; SyslogParser::max_json_bytes(4096)];
    let mut parsed = 0;
    for message in &messages {
        parsed += usize::from(parser.write_json(message, &mut out).1);
    }
    assert_eq!(parsed, 800);
    let before = crate::test_alloc::allocations_on_this_thread();
    let mut written = 0;
    for message in &messages {
        written += parser.write_json(message, &mut out).0;
    }
    assert_eq!(
        crate::test_alloc::allocations_on_this_thread() - before,
        0,
        "converting messages must not allocate"
    );
    assert!(written > 0);
}
