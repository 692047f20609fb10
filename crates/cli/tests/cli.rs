//! The `studio` binary end to end: schema, render of the example timeline, clear failures.

use std::path::{Path, PathBuf};
use std::process::Command;

fn studio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_studio"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn schema_is_a_json_schema_of_the_timeline() {
    let out = studio().args(["timeline", "schema"]).output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(schema["$schema"]
        .as_str()
        .unwrap()
        .contains("json-schema.org"));
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["version", "canvas", "scenes"]);
    let text = serde_json::to_string(&schema).unwrap();
    for term in [
        "blur-fill",
        "zoom-in",
        "crossfade",
        "loudness_lufs",
        "max_lines",
        "9:16",
    ] {
        assert!(text.contains(term), "schema lacks {term}");
    }
}

#[test]
fn the_example_timeline_renders_with_all_outputs_and_plain_progress() {
    // As the README writes it: paths relative to the timeline's own folder, no --input-dir.
    let out_dir = tempfile::tempdir().unwrap();
    let out = studio()
        .args(["timeline", "render"])
        .arg(repo().join("examples/demo.timeline.json"))
        .arg("-o")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("segments:") && stderr.contains("100%"),
        "no plain progress lines: {stderr}"
    );
    for f in [
        "final.mp4",
        "captions.srt",
        "captions.vtt",
        "thumbnail.jpg",
        "report.json",
    ] {
        assert!(out_dir.path().join(f).is_file(), "{f} missing");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["width"], 1080);
    assert_eq!(report["height"], 1920);
    assert_eq!(
        report["credits"][0],
        "\"Vibe Ace\" by Kevin MacLeod, CC-BY 3.0"
    );
}

#[test]
fn broken_timelines_fail_with_the_json_path_and_a_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = dir.path().join("t.json");
    std::fs::write(&timeline, r#"{"version": 1, "canvas": {"preset": "9:16"}, "scenes": [{"duration": -2, "visual": {"kind": "image", "path": "missing.png"}}]}"#).unwrap();
    let out = studio()
        .args(["timeline", "render"])
        .arg(&timeline)
        .arg("-o")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("$.scenes[0].duration"), "{stderr}");
    assert!(!dir.path().join("out/final.mp4").exists());

    std::fs::write(&timeline, r#"{"version": 1, "canvas": {"preset": "9:16"}, "scenes": [{"duration": 2, "visual": {"kind": "image", "path": "missing.png"}}]}"#).unwrap();
    let out = studio()
        .args(["timeline", "validate"])
        .arg(&timeline)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing.png") && stderr.contains("does not exist"),
        "{stderr}"
    );

    std::fs::write(&timeline, "{\"version\": 1, \"scenes\": [").unwrap();
    let out = studio()
        .args(["timeline", "validate"])
        .arg(&timeline)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("timeline JSON is invalid"));
}
