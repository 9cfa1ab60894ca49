//! `ossa-events validate` and `ossa-events demo`, run as the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ossa-events"))
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}
fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

const EV: &str = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;

#[test]
fn demo_output_is_valid_jsonl_of_the_whole_run() {
    let demo = bin().arg("demo").output().unwrap();
    assert!(demo.status.success(), "{}", stderr(&demo));
    let lines: Vec<&str> = std::str::from_utf8(&demo.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), ossa_events::demo::EVENT_COUNT);
    let types: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(types.first().unwrap(), "dev.ossa.workflow.started");
    assert_eq!(types.last().unwrap(), "dev.ossa.workflow.completed");
    assert!(types.iter().any(|t| t == "dev.ossa.tool.failed"));
    assert!(
        types
            .iter()
            .filter(|t| *t == "dev.ossa.turn.started")
            .count()
            >= 2
    );
    // Every line validates, and validate prints exactly what demo wrote (already canonical).
    let v = run_stdin(&["validate"], &demo.stdout);
    assert!(v.status.success(), "{}", stderr(&v));
    assert_eq!(v.stdout, demo.stdout);
}

#[test]
fn one_event_is_printed_canonically_on_one_line() {
    let pretty = b"{\n  \"type\" : \"t\",\n  \"specversion\": \"1.0\",\n  \"source\": \"/s\",\n  \"id\": \"1\",\n  \"data\": { \"a\" : [1, 2] }\n}\n";
    for fmt in ["auto", "event"] {
        let o = run_stdin(&["validate", "--format", fmt], pretty);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            stdout(&o),
            "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\",\"data\":{\"a\":[1,2]}}\n"
        );
    }
}

#[test]
fn batch_prints_each_event_and_rejects_non_arrays() {
    let batch = format!("[{EV},{EV}]");
    for fmt in ["auto", "batch"] {
        let o = run_stdin(&["validate", "--format", fmt], batch.as_bytes());
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 2);
    }
    let o = run_stdin(&["validate", "--format", "batch"], EV.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("must be a JSON array"),
        "{}",
        stderr(&o)
    );
    let o = run_stdin(&["validate"], b"[]");
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");
}

#[test]
fn batch_error_names_the_element_attribute_and_rule() {
    let bad = format!(r#"[{EV},{{"specversion":"1.0","id":"2","source":"a b","type":"t"}}]"#);
    let o = run_stdin(&["validate"], bad.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("batch element 1"), "{e}");
    assert!(e.contains("`source`"), "{e}");
    assert!(e.contains("URI-reference"), "{e}");
}

/// A pretty-printed batch (as `jq .` writes one): an element's error names
/// the line the element starts on, not line 1 of the file.
#[test]
fn a_batch_element_error_names_the_line_the_element_starts_on() {
    let bad = format!(
        "[\n  {EV},\n  {{\n    \"specversion\": \"1.0\",\n    \"id\": \"2\",\n    \"source\": \"/s\"\n  }}\n]\n"
    );
    let o = run_stdin(&["validate", "--format", "batch"], bad.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("<stdin>:3: batch element 1:"), "{e}");
    assert!(e.contains("`type`"), "{e}");
}

#[test]
fn jsonl_reports_each_bad_line_with_its_number_and_keeps_going() {
    let input = format!(
        "{EV}\n{{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/s\",\"type\":\"t\"}}\n\n{EV}\n{{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}}\n"
    );
    for fmt in ["auto", "jsonl"] {
        let o = run_stdin(&["validate", "--format", fmt], input.as_bytes());
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            stdout(&o).lines().count(),
            2,
            "the two valid lines are printed"
        );
        let e = stderr(&o);
        assert!(
            e.contains("<stdin>:2: attribute `id`: must be a non-empty string"),
            "{e}"
        );
        assert!(e.contains("<stdin>:5: attribute `specversion`"), "{e}");
    }
}

#[test]
fn files_are_named_in_errors_and_missing_files_fail() {
    let dir = std::env::temp_dir().join(format!("ossa-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    let bad = dir.join("bad.json");
    std::fs::write(&good, EV).unwrap();
    std::fs::write(&bad, r#"{"specversion":"1.0","id":"1","source":"/s"}"#).unwrap();
    let o = bin()
        .arg("validate")
        .arg(&good)
        .arg(&bad)
        .arg(dir.join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o).lines().count(), 1);
    let e = stderr(&o);
    assert!(
        e.contains("bad.json:1: attribute `type`: required attribute is missing"),
        "{e}"
    );
    assert!(e.contains("missing.json"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_bytes_get_a_clean_error_not_a_crash() {
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let deep_data = format!(
        r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "non-UTF-8",
            b"{\"specversion\":\"1.0\",\"id\":\"\xff\xfe\",\"source\":\"/s\",\"type\":\"t\"}"
                .to_vec(),
            "UTF-8",
        ),
        (
            "truncated",
            br#"{"specversion":"1.0","id":"1","sour"#.to_vec(),
            "invalid JSON",
        ),
        (
            "trailing garbage",
            format!("{EV} garbage").into_bytes(),
            "invalid JSON",
        ),
        ("deep nesting", deep.into_bytes(), "deep"),
        ("deep data", deep_data.into_bytes(), "deep"),
        ("empty", Vec::new(), "empty input"),
        ("blank", b"  \n\t ".to_vec(), "empty input"),
        ("not an object", b"42".to_vec(), "JSON object"),
    ];
    for (what, input, needle) in cases {
        let o = run_stdin(&["validate"], &input);
        assert_eq!(o.status.code(), Some(1), "{what}");
        let e = stderr(&o);
        assert!(
            e.starts_with("ossa-events: validate: <stdin>"),
            "{what}: {e}"
        );
        assert!(e.contains(needle), "{what}: {e}");
        assert_eq!(e.lines().count(), 1, "{what}: one line: {e}");
        assert!(o.stdout.is_empty(), "{what}");
    }
}

#[test]
fn syntax_errors_give_line_and_column() {
    let o = run_stdin(
        &["validate", "--format", "event"],
        b"{\n  \"id\": \"1\",\n  \"source\" \"/s\"\n}",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("<stdin>:3:12"), "{}", stderr(&o));
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for args in [
        vec!["validate", "--format", "xml"],
        vec!["validate", "--format"],
        vec!["validate", "--bogus"],
        vec!["nope"],
        vec!["demo", "extra"],
        // A source that is no URI-reference is a bad argument, as with
        // `emit --demo` (it exited 1, as a stdout that cannot be written).
        vec!["demo", "--source", ""],
        vec!["demo", "--source", "http://a b"],
        // Standard input twice: the second would read nothing.
        vec!["validate", "-", "-"],
    ] {
        let o = bin().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
    let o = bin().output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_is_available_for_every_command() {
    for args in [
        vec!["--help"],
        vec!["help"],
        vec!["validate", "--help"],
        vec!["demo", "--help"],
        vec!["help", "validate"],
    ] {
        let o = bin().args(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}");
        assert!(stdout(&o).contains("Usage: ossa-events"), "{args:?}");
    }
}

#[test]
fn jsonl_rejects_a_uri_fragment_null_data_beside_base64_and_a_padded_media_type() {
    let bad = [
        r##"{"specversion":"1.0","id":"1","source":"/s","type":"t","dataschema":"http://ex.com/s.json#frag"}"##,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"aGVsbG8=","data":null}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":" application/json"}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain;charset=utf-8 "}"#,
    ];
    let input = format!("{EV}\n{}\n", bad.join("\n"));
    let o = run_stdin(&["validate", "--format", "jsonl"], input.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o).lines().count(),
        1,
        "only the valid line is printed"
    );
    let e = stderr(&o);
    for want in [
        "<stdin>:2: attribute `dataschema`: must be an absolute URI without a fragment",
        "<stdin>:3: attribute `data`: data and data_base64 are mutually exclusive",
        "<stdin>:4: attribute `datacontenttype`: must be a media type without leading or trailing whitespace",
        "<stdin>:5: attribute `datacontenttype`: must be a media type without leading or trailing whitespace",
    ] {
        assert!(e.contains(want), "missing {want:?} in\n{e}");
    }
}

/// `validate --sequence`: per source, the numbers' range, what is missing
/// (lost events), repeated on the same id (duplicates, fine) or on another
/// id (a conflict), and what is not a number.
#[test]
fn sequence_reports_gaps_duplicates_and_conflicts_per_source() {
    let line = |src: &str, id: &str, seq: Option<&str>| match seq {
        Some(n) => format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"{src}","type":"t","sequence":"{n}"}}"#
        ),
        None => format!(r#"{{"specversion":"1.0","id":"{id}","source":"{src}","type":"t"}}"#),
    };
    // /a: 1..=6 with 4 missing and 2 delivered twice; /b: complete.
    let mut input = String::new();
    for (src, id, seq) in [
        ("/a", "a1", "00000000000000000001"),
        ("/a", "a2", "00000000000000000002"),
        ("/a", "a2", "00000000000000000002"),
        ("/a", "a3", "00000000000000000003"),
        ("/a", "a5", "00000000000000000005"),
        ("/a", "a6", "00000000000000000006"),
        ("/b", "b1", "1"),
        ("/b", "b2", "2"),
    ] {
        input.push_str(&line(src, id, Some(seq)));
        input.push('\n');
    }
    input.push_str(&line("/b", "b-none", None));
    input.push('\n');
    let o = run_stdin(&["validate", "--sequence"], input.as_bytes());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("sequence /a: 1..=6, 6 numbered, 1 missing, 1 duplicates, 0 conflicts"),
        "{err}"
    );
    assert!(err.contains("sequence /a: missing 4..=4 (1)"), "{err}");
    assert!(
        err.contains(
            "sequence /b: 1..=2, 2 numbered, 0 missing, 0 duplicates, 0 conflicts, 1 unnumbered"
        ),
        "{err}"
    );
    // Every event is still printed.
    assert_eq!(stdout(&o).lines().count(), 9);

    // Complete: exit 0. A number on two ids, or one that is not a number: 1.
    let ok = format!(
        "{}\n{}\n",
        line("/c", "c1", Some("1")),
        line("/c", "c2", Some("2"))
    );
    assert_eq!(
        run_stdin(&["validate", "--sequence"], ok.as_bytes())
            .status
            .code(),
        Some(0)
    );
    let conflict = format!(
        "{}\n{}\n",
        line("/c", "c1", Some("1")),
        line("/c", "c2", Some("1"))
    );
    let o = run_stdin(&["validate", "--sequence"], conflict.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("1 conflicts"), "{}", stderr(&o));
    let nan = format!("{}\n", line("/c", "c1", Some("one")));
    let o = run_stdin(&["validate", "--sequence"], nan.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("1 not a number"), "{}", stderr(&o));
}

/// Emitters number each source from 1, so the first events lost are
/// missing numbers too: a stream that starts at 3 lacks 1 and 2 (exit 1).
#[test]
fn sequence_counts_the_numbers_before_the_first_as_missing() {
    let line = |id: &str, n: u64| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/a","type":"t","sequence":"{n:020}"}}"#
        )
    };
    let input = format!("{}\n{}\n{}\n", line("a3", 3), line("a4", 4), line("a6", 6));
    let o = run_stdin(&["validate", "--sequence"], input.as_bytes());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("sequence /a: 3..=6, 3 numbered, 3 missing, 0 duplicates"),
        "{err}"
    );
    assert!(err.contains("sequence /a: missing 1..=2 (2)"), "{err}");
    assert!(err.contains("sequence /a: missing 5..=5 (1)"), "{err}");
    assert_eq!(stdout(&o).lines().count(), 3);
    // Only the first lost: still a failure.
    let input = format!("{}\n{}\n", line("a2", 2), line("a3", 3));
    let o = run_stdin(&["validate", "--sequence"], input.as_bytes());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing 1..=1 (1)"), "{}", stderr(&o));
}

/// A `sequence` given as a JSON number (an Integer extension value, as
/// an SDK that types it so writes it in structured mode) is a number: the
/// same event in binary mode arrives as the string "1" and was counted,
/// in structured mode it was "not a number" and failed the run.
#[test]
fn sequence_given_as_a_json_number_is_a_number() {
    let line = |id: &str, n: &str| {
        format!(r#"{{"specversion":"1.0","id":"{id}","source":"/a","type":"t","sequence":{n}}}"#)
    };
    let input = format!(
        "{}\n{}\n{}\n",
        line("a1", "1"),
        line("a2", "2"),
        line("a3", "\"3\"")
    );
    let o = run_stdin(&["validate", "--sequence"], input.as_bytes());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("sequence /a: 1..=3, 3 numbered, 0 missing, 0 duplicates, 0 conflicts, 0 unnumbered, 0 not a number"),
        "{err}"
    );
    // A negative one is not a sequence number.
    let o = run_stdin(
        &["validate", "--sequence"],
        format!("{}\n", line("a1", "-1")).as_bytes(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 not a number"), "{}", stderr(&o));
}

/// `auto` tells JSON Lines by a first line that is a whole JSON value; an
/// event whose data is nested as deep as the parser allows
/// (`MAX_DATA_DEPTH`) is such a line, one level deeper than its data. It
/// was taken for the start of one pretty-printed event: the file of valid
/// events was refused ("trailing characters") and nothing printed.
#[test]
fn auto_tells_jsonl_whose_first_event_has_the_deepest_data_allowed() {
    let depth = ossa_events::MAX_DATA_DEPTH;
    let data = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let line = |id: &str| {
        format!(r#"{{"specversion":"1.0","id":"{id}","source":"/s","type":"t","data":{data}}}"#)
    };
    let input = format!("{}\n{}\n", line("1"), line("2"));
    // Each line is a valid event on its own.
    let jsonl = run_stdin(&["validate", "--format", "jsonl"], input.as_bytes());
    assert!(jsonl.status.success(), "{}", stderr(&jsonl));
    assert_eq!(stdout(&jsonl).lines().count(), 2);
    let auto = run_stdin(&["validate"], input.as_bytes());
    assert!(auto.status.success(), "{}", stderr(&auto));
    assert_eq!(auto.stdout, jsonl.stdout);
}

/// `auto` on JSON Lines whose first line is broken (cut short, a stray
/// log line): the next line, a whole JSON object, tells JSON Lines, so
/// each line is checked and reported on its own. The file was taken for one
/// pretty-printed event: one "trailing characters" error, and none of the
/// valid lines checked or printed. A pretty-printed event (no line of it a
/// whole object) is still one event.
#[test]
fn auto_tells_jsonl_whose_first_line_is_broken_by_the_next_line() {
    let ev = |id: &str| format!(r#"{{"specversion":"1.0","id":"{id}","source":"/s","type":"t"}}"#);
    for first in [
        r#"{"specversion":"1.0","id":"cut"#.to_string(),
        "2026-12-06T10:00:00Z INFO agent started".to_string(),
    ] {
        let input = format!("{first}\n{}\n\n{}\n", ev("2"), ev("3"));
        let jsonl = run_stdin(&["validate", "--format", "jsonl"], input.as_bytes());
        let auto = run_stdin(&["validate"], input.as_bytes());
        assert_eq!(auto.status.code(), Some(1), "{}", stderr(&auto));
        assert_eq!(
            stdout(&auto).lines().count(),
            2,
            "{first}: {}",
            stderr(&auto)
        );
        assert_eq!(auto.stdout, jsonl.stdout, "{first}");
        assert!(
            stderr(&auto).contains("<stdin>:1:"),
            "{first}: {}",
            stderr(&auto)
        );
        // Read in small pieces (a pipe), the same.
        let mut c = bin()
            .args(["validate"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        let bytes = input.clone().into_bytes();
        let feeder = std::thread::spawn(move || {
            use std::io::Write as _;
            for piece in bytes.chunks(7) {
                stdin.write_all(piece).unwrap();
                stdin.flush().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        let piped = c.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert_eq!(piped.stdout, jsonl.stdout, "{first}: {}", stderr(&piped));
    }
    // A pretty-printed event: still one event.
    let pretty = "{\n  \"specversion\": \"1.0\",\n  \"id\": \"p\",\n  \"source\": \"/s\",\n  \"type\": \"t\",\n  \"data\": {\"a\": 1}\n}\n";
    let o = run_stdin(&["validate"], pretty.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1);
    // One whose data array has an object per line: still one event.
    let pretty = "{\"specversion\":\"1.0\",\"id\":\"q\",\"source\":\"/s\",\"type\":\"t\",\"data\":[\n{\"a\":1},\n{\"a\":2}\n]}\n";
    let o = run_stdin(&["validate"], pretty.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1);
    // A pretty-printed event that is broken: one error, not one per line.
    let broken = "{\n  \"specversion\": \"1.0\",\n  \"id\": \"p\"\n  \"source\": \"/s\"\n}\n";
    let o = run_stdin(&["validate"], broken.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("<stdin>:4:"), "{}", stderr(&o));
}

/// `auto` on one event whose first line ends where a value begins (`:`,
/// `[`, `,`) and whose next line is an event of its own (its data is one):
/// the next line may continue the first, so it is one event, valid. It was
/// taken for JSON Lines: two errors, and the inner event printed as one.
#[test]
fn auto_reads_an_event_whose_data_is_an_event_on_the_next_line_as_one_event() {
    let inner = r#"{"specversion":"1.0","id":"inner","source":"/s","type":"t"}"#;
    for (open, close) in [(":", "}"), (":[", "]}"), (":[1,", "]}")] {
        let input = format!(
            "{{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"relay\",\"data\"{open}\r\n{inner}\r\n{close}\r\n"
        );
        let auto = run_stdin(&["validate"], input.as_bytes());
        let event = run_stdin(&["validate", "--format", "event"], input.as_bytes());
        assert!(event.status.success(), "{open}: {}", stderr(&event));
        assert!(auto.status.success(), "{open}: {}", stderr(&auto));
        assert_eq!(auto.stdout, event.stdout, "{open}");
    }
}

/// A stream of JSON batches, one array a line, as the core's
/// `BatchFormat::JsonBatch` writes them (each drain's `[…]` ends in `\n`,
/// "so that a stream of them can be read line by line"): `validate` reads
/// each line as the batch it is, in auto and jsonl format alike, with CRLF
/// line ends too, and an element's error names its line and element. Auto
/// took the whole input for one batch and failed at line 2 ("trailing
/// characters"); jsonl refused every line ("an event must be a JSON object").
/// A stream of batch lines whose first line's events carry data nested as
/// deep as data may be (128 levels) is still a stream of lines: the first
/// line was taken for the start of one pretty-printed batch (its depth
/// checked as an event's, one level short), and the valid input reported
/// as "trailing characters after value" on line 2.
#[test]
fn batch_lines_with_the_deepest_data_are_read_line_by_line() {
    let deepest = format!("{}0{}", "[".repeat(128), "]".repeat(128));
    let deep = EV.replace('}', &format!(r#","data":{deepest}}}"#));
    let input = format!("[{deep}]\n[{EV}]\n");
    for fmt in ["auto", "jsonl"] {
        let o = run_stdin(&["validate", "--format", fmt], input.as_bytes());
        assert!(o.status.success(), "{fmt}: {}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 2, "{fmt}");
    }
    // One level deeper is too deep, and said so.
    let deeper = EV.replace('}', &format!(r#","data":[{deepest}]}}"#));
    let o = run_stdin(&["validate"], format!("[{deeper}]\n[{EV}]\n").as_bytes());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("nested too deeply"), "{}", stderr(&o));
}

#[test]
fn a_stream_of_one_line_batches_is_read_line_by_line() {
    let ev = |id: &str| EV.replace(r#""id":"1""#, &format!(r#""id":"{id}""#));
    let input = format!(
        "[{},{}]\r\n\r\n[{}]\r\n{}\r\n[]\n",
        ev("a"),
        ev("b"),
        ev("c"),
        ev("d")
    );
    for fmt in ["auto", "jsonl"] {
        let o = run_stdin(&["validate", "--format", fmt], input.as_bytes());
        assert!(o.status.success(), "{fmt}: {}", stderr(&o));
        let ids: Vec<String> = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect();
        assert_eq!(ids, [r#""a""#, r#""b""#, r#""c""#, r#""d""#], "{fmt}");
    }
    // One bad element: its line and index are named, the other lines are
    // still checked and printed.
    let bad = format!(
        "[{}]\n[{},{}]\n[{}]\n",
        ev("a"),
        ev("b"),
        r#"{"specversion":"1.0","id":"x","source":"a b","type":"t"}"#,
        ev("c")
    );
    for fmt in ["auto", "jsonl"] {
        let o = run_stdin(&["validate", "--format", fmt], bad.as_bytes());
        assert_eq!(o.status.code(), Some(1), "{fmt}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("<stdin>:2: batch element 1:"), "{fmt}: {e}");
        assert!(e.contains("`source`"), "{fmt}: {e}");
        assert_eq!(stdout(&o).lines().count(), 3, "{fmt}: {e}");
    }
    // A one-line batch alone, or a pretty-printed one, is still one batch.
    for one in [
        format!("[{},{}]\n\n", ev("a"), ev("b")),
        format!("[\n{},\n{}\n]\n", ev("a"), ev("b")),
    ] {
        let o = run_stdin(&["validate"], one.as_bytes());
        assert!(o.status.success(), "{one}: {}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 2, "{one}");
    }
}

/// A line over 64 MiB is dropped as it is read, as `emit` drops it: not
/// held in memory (an input with no newline grew without bound), reported
/// with its line number in `emit`'s words, counted invalid, and the lines
/// after it checked. So too a first line with no end in sight in `auto`
/// (which read on to tell the format), and an input with no newline at all.
#[test]
fn a_line_over_64_mib_is_dropped_as_it_is_read_and_reported() {
    let ev = |id: &str| EV.replace(r#""id":"1""#, &format!(r#""id":"{id}""#));
    let big = "x".repeat(65 << 20);
    let too_long = |n: usize| format!("<stdin>:{n}: line longer than 67108864 bytes: not read");
    let cases: [(&[&str], String, usize, &[&str]); 4] = [
        (
            &["validate"],
            format!("{}\n{big}\n{}\n", ev("a"), ev("b")),
            2,
            &["a", "b"],
        ),
        (
            &["validate", "--format", "jsonl"],
            format!("{}\n{big}\n{}\n", ev("a"), ev("b")),
            2,
            &["a", "b"],
        ),
        (&["validate"], format!("{big}\n{}\n", ev("b")), 1, &["b"]),
        (&["validate"], big.clone(), 1, &[]),
    ];
    for (args, input, at, ids) in cases {
        let o = run_stdin(args, input.as_bytes());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            [format!("ossa-events: validate: {}", too_long(at))],
            "{args:?}"
        );
        let got: Vec<String> = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect();
        let want: Vec<String> = ids.iter().map(|i| format!("{i:?}")).collect();
        assert_eq!(got, want, "{args:?}: {err}");
    }
}

/// A `sequence` string is a number when it is decimal digits only,
/// zero-padded or not (the sequence extension orders its values as
/// strings and asks for leading zeros so that they do): `+2` was counted
/// as 2, a number no emitter writes and one that does not sort as 2 does.
/// The first value that is not a number is named.
#[test]
fn a_sequence_number_is_decimal_digits_only() {
    let line = |id: &str, n: &str| {
        format!(r#"{{"specversion":"1.0","id":"{id}","source":"/a","type":"t","sequence":"{n}"}}"#)
    };
    let padded = format!(
        "{}\n{}\n{}\n",
        line("a1", "1"),
        line("a2", "0002"),
        line("a3", "00000000000000000003")
    );
    let o = run_stdin(&["validate", "--sequence"], padded.as_bytes());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("sequence /a: 1..=3, 3 numbered, 0 missing, 0 duplicates, 0 conflicts, 0 unnumbered, 0 not a number"),
        "{err}"
    );
    for bad in ["+2", " 2", "2 ", "0x2", "2.0", "-2", "18446744073709551616"] {
        let input = format!("{}\n{}\n", line("a1", "1"), line("a2", bad));
        let o = run_stdin(&["validate", "--sequence"], input.as_bytes());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{bad:?}: {err}");
        assert!(
            err.contains("sequence /a: 1..=1, 1 numbered, 0 missing, 0 duplicates, 0 conflicts, 0 unnumbered, 1 not a number"),
            "{bad:?}: {err}"
        );
        assert!(
            err.contains(&format!("sequence /a: {bad:?} is not a sequence number")),
            "{bad:?}: {err}"
        );
        // The event itself is valid, and printed.
        assert_eq!(stdout(&o).lines().count(), 2, "{bad:?}");
    }
}

/// A batch line whose JSON breaks after valid elements is one JSON error,
/// and none of its elements is printed (nor numbered for `--sequence`):
/// the line is not JSON, as `emit` sends nothing of such a line. So too
/// when an element's own error comes before the break, and for a batch
/// document. The other lines are checked and printed as before.
#[test]
fn a_batch_whose_json_breaks_further_on_prints_none_of_it() {
    let ev = |id: &str| {
        EV.replace(
            r#""id":"1""#,
            &format!(r#""id":"{id}","sequence":"{}""#, &id[1..]),
        )
    };
    let bad_source = r#"{"specversion":"1.0","id":"x","source":"a b","type":"t"}"#;
    let ids = |o: &Output| -> Vec<String> {
        stdout(o)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect()
    };
    let reports = |o: &Output, cmd: &str| -> Vec<String> {
        stderr(o)
            .lines()
            .filter(|l| l.starts_with(&format!("ossa-events: {cmd}: ")))
            .map(str::to_owned)
            .collect()
    };
    for mid in [
        format!("[{},{}, {{\"a\":]", ev("a2"), ev("a2")),
        format!("[{},{bad_source}, {{\"a\":]", ev("a2")),
    ] {
        let input = format!("{}\n{mid}\n{}\n", ev("a1"), ev("a3"));
        for args in [&["validate"][..], &["validate", "--format", "jsonl"]] {
            let o = run_stdin(args, input.as_bytes());
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{args:?} {mid}: {err}");
            assert_eq!(ids(&o), [r#""a1""#, r#""a3""#], "{args:?} {mid}: {err}");
            let r = reports(&o, "validate");
            assert_eq!(r.len(), 1, "{args:?} {mid}: {err}");
            assert!(
                r[0].starts_with("ossa-events: validate: <stdin>:2:")
                    && r[0].contains("invalid JSON"),
                "{args:?} {mid}: {err}"
            );
        }
        // The broken line numbers nothing: 1 and 3 seen, 2 missing.
        let o = run_stdin(&["validate", "--sequence"], input.as_bytes());
        assert!(
            stderr(&o).contains("1..=3, 2 numbered, 1 missing, 0 duplicates"),
            "{mid}: {}",
            stderr(&o)
        );
        // `emit` sends nothing of the broken line either.
        let o = run_stdin(&["emit"], input.as_bytes());
        assert_eq!(
            ids(&o),
            [r#""a1""#, r#""a3""#],
            "emit {mid}: {}",
            stderr(&o)
        );
        assert_eq!(reports(&o, "emit").len(), 1, "emit {mid}: {}", stderr(&o));
        // A batch document that breaks at its end: nothing printed.
        let doc = format!("{mid}\n");
        let o = run_stdin(&["validate", "--format", "batch"], doc.as_bytes());
        assert_eq!(o.status.code(), Some(1), "batch {mid}: {}", stderr(&o));
        assert!(ids(&o).is_empty(), "batch {mid}: {}", stderr(&o));
        assert_eq!(
            reports(&o, "validate").len(),
            1,
            "batch {mid}: {}",
            stderr(&o)
        );
    }
}
