//! How `sessionctl` prints: table columns measured by display width and
//! long values cut with `…` (but for the last column); enums spelled alike
//! in JSON and tables; `-` for every empty field of a table, `null` for an
//! unset one in JSON.

use unicode_width::UnicodeWidthStr;

use super::*;

/// The display column at which `needle` starts in `line`.
#[track_caller]
fn column_of(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in {line:?}"));
    line[..at].width()
}

#[tokio::test]
async fn table_columns_line_up_by_display_width_and_long_values_are_cut() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let long = format!("R41-{}", "x".repeat(60));
    for user in ["山田太郎", "🦀", "R41", long.as_str()] {
        client.start_session(user, "").await.unwrap();
    }

    let run = sessionctl(&server, &["list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", run.stdout);
    let kind = column_of(lines[0], "KIND");
    let state = column_of(lines[0], "STATE");
    for line in &lines[1..] {
        assert_eq!(column_of(line, "interactive"), kind, "{}", run.stdout);
        assert_eq!(column_of(line, "open"), state, "{}", run.stdout);
    }
    let cut = format!("{}…", &long[..39]);
    assert_eq!(cut.width(), 40);
    assert_eq!(
        column_of(lines[4], &cut),
        column_of(lines[0], "USER"),
        "cut in the USER column: {}",
        lines[4]
    );
    assert!(
        lines[4].ends_with(&format!("  {long}")),
        "whole in the last column (EFFECTIVE_USER), with nothing to push: {}",
        lines[4]
    );

    let listed = sessionctl(&server, &["--output", "json", "list"])
        .await
        .json_lines();
    assert_eq!(listed[3]["user"], json!(long), "whole in JSON");
    assert_eq!(listed[0]["user"], "山田太郎");
}

#[tokio::test]
async fn json_and_tables_spell_enums_alike_and_show_empty_fields_as_a_dash() {
    let server = TestServer::start().await;
    let client = client_for(&server).await;
    let open = client.start_session("R41", "").await.unwrap().session_id;
    let ended = client
        .open_clientless_session("R41")
        .await
        .unwrap()
        .session_id;
    client.end_session(ended).await.unwrap();

    for id in [open, ended] {
        let arg = id.to_string();
        let json = sessionctl(&server, &["--output", "json", "info", &arg])
            .await
            .json();
        let run = sessionctl(&server, &["info", &arg]).await;
        assert_eq!(run.code, 0, "{run:?}");
        for name in ["kind", "state", "end_reason"] {
            let shown = field(&run.stdout, name);
            match &json[name] {
                Value::String(spelled) => assert_eq!(shown, spelled, "{name}"),
                Value::Null => assert_eq!(shown, "-", "{name}"),
                other => panic!("{name}: {other}"),
            }
        }
        for line in run.stdout.lines() {
            let (name, value) = line.split_once(' ').unwrap();
            assert!(!value.trim().is_empty(), "{name} is shown as `-`");
        }
    }

    let open_json = sessionctl(&server, &["--output", "json", "info", &open.to_string()])
        .await
        .json();
    assert_eq!(open_json["end_reason"], Value::Null);
    assert_eq!(open_json["end_time"], Value::Null);
    assert_eq!(open_json["client"], "");
    let open_table = sessionctl(&server, &["info", &open.to_string()]).await;
    assert_eq!(field(&open_table.stdout, "end_reason"), "-");
    assert_eq!(field(&open_table.stdout, "end_time"), "-");
    assert_eq!(field(&open_table.stdout, "client"), "-");
    let ended_json = sessionctl(&server, &["--output", "json", "info", &ended.to_string()])
        .await
        .json();
    assert_eq!(ended_json["kind"], "clientless");
    assert_eq!(ended_json["state"], "ended");
    assert_eq!(ended_json["end_reason"], "closed_by_client");

    let run = sessionctl(&server, &["list"]).await;
    for row in &table(&run.stdout)[1..] {
        assert_eq!(row.len(), 8, "a cell in every column: {}", run.stdout);
    }

    // Events: the same spelling in both.
    let json = sessionctl(&server, &["--output", "json", "audit", "list"])
        .await
        .json_lines();
    let run = sessionctl(&server, &["audit", "list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = table(&run.stdout);
    assert_eq!(rows.len(), json.len() + 1, "{}", run.stdout);
    for (event, row) in json.iter().zip(&rows[1..]) {
        assert_eq!(row[0], event["revision"].to_string());
        assert_eq!(row[2], event["kind"].as_str().unwrap());
    }
    let ended_event = json
        .iter()
        .find(|e| e["kind"] == "session_ended")
        .expect("the end was recorded");
    assert_eq!(ended_event["end_reason"], "closed_by_client");
    assert_eq!(json[0]["end_reason"], Value::Null);
}
