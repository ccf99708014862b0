//! The presets' rules over real stack traces, and `start:REGEX`.

use super::*;

/// Steps every line of `text` as the worker does: the state of the pending
/// record carried from line to line. Returns the records, lines joined
/// with `\n`, in the order they would be sent.
fn records(multiline: &Multiline, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending: Option<(String, State)> = None;
    for line in text.lines() {
        let state = pending.as_ref().map_or(START, |(_, state)| *state);
        match multiline.step(state, line.as_bytes()) {
            Step::Continue(to) => {
                let (record, _) = pending.take().expect("continues a pending record");
                let record = format!("{record}\n{line}");
                if to == START {
                    out.push(record);
                } else {
                    pending = Some((record, to));
                }
            }
            Step::Start(to) => {
                out.extend(pending.take().map(|(record, _)| record));
                pending = Some((line.to_string(), to));
            }
            Step::Single => {
                out.extend(pending.take().map(|(record, _)| record));
                out.push(line.to_string());
            }
        }
    }
    out.extend(pending.map(|(record, _)| record));
    out
}

fn preset(rule: MultilineRule) -> Multiline {
    Multiline::new(&rule).unwrap()
}

const JAVA_TRACE: &str = "\
Exception in thread \"main\" java.lang.IllegalStateException: boom
\tat com.example.App.run(App.java:42)
\tat com.example.App.main(App.java:10)
Caused by: java.io.IOException: disk
\tat com.example.Disk.read(Disk.java:7)
\t... 2 more";

#[test]
fn java_joins_a_trace_with_its_causes_and_ends_at_the_next_log_line() {
    let text = format!("12:00:00 INFO started\n{JAVA_TRACE}\n12:00:01 INFO next\n");
    assert_eq!(
        records(&preset(MultilineRule::Java), &text),
        ["12:00:00 INFO started", JAVA_TRACE, "12:00:01 INFO next"]
    );
}

#[test]
fn java_takes_an_exception_name_alone_on_its_line() {
    let text = "java.lang.NullPointerException\n\tat A.b(A.java:1)\nnext\n";
    assert_eq!(
        records(&preset(MultilineRule::Java), text),
        ["java.lang.NullPointerException\n\tat A.b(A.java:1)", "next"]
    );
}

const PYTHON_TRACE: &str = "\
Traceback (most recent call last):
  File \"/app/main.py\", line 3, in <module>
    main()
  File \"/app/main.py\", line 2, in main
    raise ValueError(\"bad\")
ValueError: bad";

#[test]
fn python_joins_a_traceback_through_its_exception_line() {
    let text = format!("before\n{PYTHON_TRACE}\nafter\n");
    assert_eq!(
        records(&preset(MultilineRule::Python), &text),
        ["before", PYTHON_TRACE, "after"]
    );
    // The exception line ends the record: nothing stays pending.
    let multiline = preset(MultilineRule::Python);
    let mut state = START;
    for line in PYTHON_TRACE.lines() {
        state = match multiline.step(state, line.as_bytes()) {
            Step::Continue(to) | Step::Start(to) => to,
            Step::Single => START,
        };
    }
    assert_eq!(state, START);
}

const GO_PANIC: &str = "\
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x47d1a3]

goroutine 1 [running]:
main.handler(0x0)
\t/app/main.go:12 +0x23
main.main()
\t/app/main.go:20 +0x1d

goroutine 6 [chan receive]:
created by main.main in goroutine 1
\t/app/main.go:18 +0x9a";

#[test]
fn go_joins_a_panic_and_its_goroutines() {
    let text = format!("serving\n{GO_PANIC}\nexit status 2\n");
    assert_eq!(
        records(&preset(MultilineRule::Go), &text),
        ["serving", GO_PANIC, "exit status 2"]
    );
}

#[test]
fn start_regex_joins_every_line_up_to_the_next_match() {
    let multiline = preset(MultilineRule::parse(r"start:^\d{4}-").unwrap());
    let text = "  orphan\n2026-12-02 a\n  b\n  c\n2026-12-02 d\n";
    assert_eq!(
        records(&multiline, text),
        ["  orphan", "2026-12-02 a\n  b\n  c", "2026-12-02 d"]
    );
}

#[test]
fn a_rules_words_only_spare_lines_its_regex_would_not_match() {
    let lines = [
        "java.lang.IllegalStateException: boom",
        "Exception: at the start",
        "an Error",
        "an Error: with a reason",
        "ErrorError:",
        "org.Throwable",
        "x V8 errors stack trace",
        "Exceptions: plural",
        "no such word: here",
        "",
    ];
    for (rule, table) in [(MultilineRule::Java, JAVA), (MultilineRule::Python, PYTHON)] {
        let Multiline::Rules(compiled) = preset(rule) else {
            unreachable!("presets are rule tables")
        };
        for (compiled, rule) in compiled.iter().zip(table) {
            let regex = compile_regex(rule.pattern).unwrap();
            for line in lines {
                let line = line.as_bytes();
                assert_eq!(compiled.matches(line), regex.is_match(line), "{line:?}");
            }
        }
    }
}

#[test]
fn a_bad_setting_is_one_clear_error() {
    assert_eq!(
        MultilineRule::parse("start:(unclosed").unwrap_err(),
        "multiline: the regex '(unclosed' is not valid: unclosed group"
    );
    assert!(
        MultilineRule::parse("ruby")
            .unwrap_err()
            .contains("start:REGEX, java, python or go")
    );
    for spelling in ["java", "python", "go", "start:^x,y{1,2}"] {
        assert_eq!(MultilineRule::parse(spelling).unwrap().spelling(), spelling);
    }
}
