//! The one way Studio runs FFmpeg and ffprobe.
//!
//! [`FfmpegCommand`] builds an argument list under a [`Sandbox`]:
//! - every input gets a forced demuxer (`-f`) chosen by content sniffing, the `file` protocol
//!   only (`-protocol_whitelist file`, `file:` prefix), and must lie inside the render's input or
//!   work folders (after resolving symlinks);
//! - concat lists are read and every entry checked the same way before FFmpeg sees them;
//! - files that filters read (subtitles, fonts) must lie inside the work folder and are passed as
//!   plain relative paths, with the process's working directory set to the work folder;
//! - outputs must lie inside the work or output folders.
//!
//! [`FfmpegCommand::run`] spawns the process with `kill_on_drop`, parses `-progress` output into
//! frame counts, honours a [`CancellationToken`] and a deadline, and returns FFmpeg's error text
//! when it fails.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::error::MediaError;
use crate::sniff::{sniff_file, SourceFormat};

/// Where the FFmpeg binaries are.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// Path or name of `ffmpeg`.
    pub ffmpeg: PathBuf,
    /// Path or name of `ffprobe`.
    pub ffprobe: PathBuf,
}

impl Default for Toolchain {
    /// Uses `$STUDIO_FFMPEG` / `$STUDIO_FFPROBE` when set, else `ffmpeg` / `ffprobe` on `PATH`.
    fn default() -> Self {
        let pick = |var: &str, name: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(name))
        };
        Self {
            ffmpeg: pick("STUDIO_FFMPEG", "ffmpeg"),
            ffprobe: pick("STUDIO_FFPROBE", "ffprobe"),
        }
    }
}

impl Toolchain {
    /// Returns the first line of `ffmpeg -version`, part of every segment's cache key.
    ///
    /// Errors with [`MediaError::MissingTool`] when FFmpeg cannot be started.
    pub async fn ffmpeg_version(&self) -> Result<String, MediaError> {
        let out = Command::new(&self.ffmpeg)
            .arg("-version")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|source| MediaError::MissingTool {
                tool: self.ffmpeg.display().to_string(),
                source,
            })?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string())
    }
}

/// The folders one render may touch. Paths are canonical (symlinks resolved).
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Read-only input media.
    pub inputs: PathBuf,
    /// Scratch and cache: readable and writable; filters may read here.
    pub work: PathBuf,
    /// Final outputs: writable, readable.
    pub output: PathBuf,
}

impl Sandbox {
    /// Creates `work` and `output` when missing and resolves all three folders.
    ///
    /// Errors with [`MediaError::Io`] when a folder cannot be created or resolved.
    pub fn new(inputs: &Path, work: &Path, output: &Path) -> Result<Self, MediaError> {
        for dir in [work, output] {
            std::fs::create_dir_all(dir).map_err(|e| MediaError::io(dir, e))?;
        }
        let canon = |p: &Path| p.canonicalize().map_err(|e| MediaError::io(p, e));
        Ok(Self {
            inputs: canon(inputs)?,
            work: canon(work)?,
            output: canon(output)?,
        })
    }

    fn roots(&self) -> String {
        format!(
            "inputs {}, work {}, output {}",
            self.inputs.display(),
            self.work.display(),
            self.output.display()
        )
    }

    /// Resolves `path` and checks it is an existing file inside the input, work or output folder.
    ///
    /// Errors: [`MediaError::Input`] when it does not exist or is not a file,
    /// [`MediaError::OutsideSandbox`] when it resolves outside the folders.
    pub fn check_read(&self, path: &Path) -> Result<PathBuf, MediaError> {
        let resolved = path.canonicalize().map_err(|e| MediaError::Input {
            path: path.to_path_buf(),
            problem: if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".into()
            } else {
                format!("cannot be opened: {e}")
            },
        })?;
        if ![&self.inputs, &self.work, &self.output]
            .iter()
            .any(|root| resolved.starts_with(root))
        {
            return Err(MediaError::OutsideSandbox {
                path: path.to_path_buf(),
                roots: self.roots(),
            });
        }
        if !resolved.is_file() {
            return Err(MediaError::Input {
                path: path.to_path_buf(),
                problem: "is not a regular file".into(),
            });
        }
        Ok(resolved)
    }

    /// Checks that `path` (which need not exist yet) would be written inside the work or output
    /// folder, and returns it with its folder resolved.
    pub fn check_write(&self, path: &Path) -> Result<PathBuf, MediaError> {
        let outside = || MediaError::OutsideSandbox {
            path: path.to_path_buf(),
            roots: self.roots(),
        };
        let parent = path.parent().ok_or_else(outside)?;
        let name = path.file_name().ok_or_else(outside)?;
        let parent = parent
            .canonicalize()
            .map_err(|e| MediaError::io(parent, e))?;
        if !(parent.starts_with(&self.work) || parent.starts_with(&self.output)) {
            return Err(outside());
        }
        Ok(parent.join(name))
    }

    /// Resolves a user path relative to the input folder (absolute paths are taken as given and
    /// must still resolve inside the folders).
    pub fn input_path(&self, relative: &str) -> PathBuf {
        let p = Path::new(relative);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.inputs.join(p)
        }
    }
}

/// Which program a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `ffmpeg`.
    Ffmpeg,
    /// `ffprobe`.
    Ffprobe,
}

/// An FFmpeg or ffprobe invocation under construction. See the module docs for the rules.
#[derive(Debug)]
pub struct FfmpegCommand<'a> {
    sandbox: &'a Sandbox,
    tool: Tool,
    loglevel: &'static str,
    args: Vec<String>,
    /// The same arguments with every input path replaced by a marker, for cache keys.
    key: Vec<String>,
    inputs: Vec<PathBuf>,
    input_count: usize,
    has_output: bool,
}

impl<'a> FfmpegCommand<'a> {
    /// Starts an `ffmpeg` command.
    pub fn ffmpeg(sandbox: &'a Sandbox) -> Self {
        Self::new(sandbox, Tool::Ffmpeg)
    }

    /// Starts an `ffprobe` command.
    pub fn ffprobe(sandbox: &'a Sandbox) -> Self {
        Self::new(sandbox, Tool::Ffprobe)
    }

    fn new(sandbox: &'a Sandbox, tool: Tool) -> Self {
        Self {
            sandbox,
            tool,
            loglevel: "error",
            args: Vec::new(),
            key: Vec::new(),
            inputs: Vec::new(),
            input_count: 0,
            has_output: false,
        }
    }

    /// Sets FFmpeg's log level (`error` by default; `info` for filters that report through logs).
    pub fn loglevel(&mut self, level: &'static str) -> &mut Self {
        self.loglevel = level;
        self
    }

    /// Appends plain arguments (options, codec names, numbers). Never pass paths here.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for a in args {
            let a = a.into();
            self.key.push(a.clone());
            self.args.push(a);
        }
        self
    }

    /// Adds an input file read with the demuxer for `format`, preceded by `options` (input
    /// options such as `-stream_loop -1`), and returns its input index.
    ///
    /// Errors: the sandbox errors of [`Sandbox::check_read`]; [`MediaError::Input`] when the
    /// content is not `format` (a playlist named `.mp4`, text named `.png`, …).
    pub fn input(
        &mut self,
        path: &Path,
        format: SourceFormat,
        options: &[&str],
    ) -> Result<usize, MediaError> {
        let resolved = self.sandbox.check_read(path)?;
        match sniff_file(&resolved) {
            Ok(found) if found == format => {}
            Ok(found) => {
                return Err(MediaError::Input {
                    path: path.to_path_buf(),
                    problem: format!("has {found} content where {format} content is expected"),
                });
            }
            Err(e) => {
                return Err(MediaError::Input {
                    path: path.to_path_buf(),
                    problem: e.to_string(),
                })
            }
        }
        self.push_input(resolved, format.demuxer(), options);
        Ok(self.input_count - 1)
    }

    /// Adds an FFmpeg concat list (`ffconcat version 1.0`, `file '…'` lines) as an input after
    /// checking that every file it names is an MP4 inside the sandbox; returns the input index.
    ///
    /// Errors: [`MediaError::Input`] for a malformed list or an entry that is missing or not an
    /// MP4; [`MediaError::OutsideSandbox`] for an entry outside the folders.
    pub fn concat_input(&mut self, list: &Path) -> Result<usize, MediaError> {
        let resolved = self.sandbox.check_read(list)?;
        let text = std::fs::read_to_string(&resolved).map_err(|e| MediaError::io(list, e))?;
        let dir = resolved.parent().unwrap_or(Path::new("/")).to_path_buf();
        let bad = |problem: String| MediaError::Input {
            path: list.to_path_buf(),
            problem,
        };
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        if lines.next() != Some("ffconcat version 1.0") {
            return Err(bad("is not an `ffconcat version 1.0` list".into()));
        }
        for line in lines {
            if let Some(value) = line.strip_prefix("duration ") {
                if value
                    .trim()
                    .parse::<f64>()
                    .is_ok_and(|d| d.is_finite() && d > 0.0)
                {
                    continue;
                }
                return Err(bad(format!("has a bad duration: {line:?}")));
            }
            let Some(rest) = line.strip_prefix("file ") else {
                return Err(bad(format!(
                    "has a directive Studio does not allow: {line:?}"
                )));
            };
            let name = rest.trim().trim_matches('\'');
            if name.contains(':') || name.contains('\'') || name.contains('\\') {
                return Err(bad(format!(
                    "names {name:?}, which is not a plain relative file name"
                )));
            }
            let entry = dir.join(name);
            let entry = self.sandbox.check_read(&entry)?;
            match sniff_file(&entry) {
                Ok(SourceFormat::Mp4) => {}
                Ok(other) => {
                    return Err(bad(format!(
                        "names {name:?}, a {other}, where MP4 segments are expected"
                    )))
                }
                Err(e) => return Err(bad(format!("names {name:?}, which {e}"))),
            }
        }
        self.push_input(resolved, "concat", &["-safe", "1"]);
        Ok(self.input_count - 1)
    }

    /// Adds raw `yuv420p` video that Studio itself writes into `fifo` (a FIFO inside the work
    /// folder), `width`×`height` at `fps`; returns the input index. `key` stands for the
    /// stream's content in cache keys (the FIFO cannot be hashed).
    ///
    /// Errors: [`MediaError::OutsideSandbox`] outside the work folder; [`MediaError::Input`]
    /// when the path is not a FIFO.
    pub fn generated_input(
        &mut self,
        fifo: &Path,
        width: u32,
        height: u32,
        fps: u32,
        key: &str,
    ) -> Result<usize, MediaError> {
        use std::os::unix::fs::FileTypeExt;
        let resolved = fifo.canonicalize().map_err(|e| MediaError::io(fifo, e))?;
        if !resolved.starts_with(&self.sandbox.work) {
            return Err(MediaError::OutsideSandbox {
                path: fifo.to_path_buf(),
                roots: self.sandbox.roots(),
            });
        }
        let is_fifo = std::fs::metadata(&resolved)
            .map(|m| m.file_type().is_fifo())
            .unwrap_or(false);
        if !is_fifo {
            return Err(MediaError::Input {
                path: fifo.to_path_buf(),
                problem: "is not a FIFO made by this render".into(),
            });
        }
        self.args([
            "-f".to_string(),
            "rawvideo".into(),
            "-pix_fmt".into(),
            "yuv420p".into(),
        ]);
        self.args([
            "-s".to_string(),
            format!("{width}x{height}"),
            "-framerate".into(),
            fps.to_string(),
        ]);
        self.args(["-protocol_whitelist", "file"]);
        self.args
            .extend(["-i".to_string(), format!("file:{}", resolved.display())]);
        self.key
            .extend(["-i".to_string(), format!("<generated {key}>")]);
        self.input_count += 1;
        Ok(self.input_count - 1)
    }

    fn push_input(&mut self, resolved: PathBuf, demuxer: &str, options: &[&str]) {
        self.args(options.iter().copied());
        self.args(["-protocol_whitelist", "file", "-f", demuxer]);
        if self.tool == Tool::Ffmpeg {
            self.args.push("-i".into());
            self.key.push("-i".into());
        }
        self.args.push(format!("file:{}", resolved.display()));
        self.key.push(format!("<input {}>", self.inputs.len()));
        self.inputs.push(resolved);
        self.input_count += 1;
    }

    /// Checks that `path` is a file or folder inside the work folder and returns the relative
    /// path to use inside a filter graph (the process runs in the work folder).
    ///
    /// Errors: [`MediaError::OutsideSandbox`] when it is elsewhere; [`MediaError::Input`] when
    /// it is missing or its name has characters that would need filter-graph escaping.
    pub fn filter_path(&self, path: &Path) -> Result<String, MediaError> {
        let resolved = path.canonicalize().map_err(|e| MediaError::io(path, e))?;
        let relative =
            resolved
                .strip_prefix(&self.sandbox.work)
                .map_err(|_| MediaError::OutsideSandbox {
                    path: path.to_path_buf(),
                    roots: self.sandbox.roots(),
                })?;
        let text = relative.to_string_lossy().to_string();
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
            && !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
        if !plain {
            return Err(MediaError::Input {
                path: path.to_path_buf(),
                problem: "has a name that is unsafe inside a filter graph".into(),
            });
        }
        Ok(text)
    }

    /// Sets the output file and its muxer.
    ///
    /// Errors: [`MediaError::OutsideSandbox`] outside the work and output folders.
    pub fn output(&mut self, path: &Path, muxer: &str) -> Result<&mut Self, MediaError> {
        let resolved = self.sandbox.check_write(path)?;
        self.args(["-f", muxer]);
        self.args.push(format!("file:{}", resolved.display()));
        self.has_output = true;
        Ok(self)
    }

    /// Sends the output to FFmpeg's null muxer (analysis passes).
    pub fn null_output(&mut self) -> &mut Self {
        self.args(["-f", "null", "-"]);
        self.has_output = true;
        self
    }

    /// Returns the resolved input files, in input order.
    pub fn inputs(&self) -> &[PathBuf] {
        &self.inputs
    }

    /// Returns the arguments with inputs replaced by `<input N>` markers (stable across folders).
    pub fn key_args(&self) -> &[String] {
        &self.key
    }

    /// Returns the full argument list as it will be passed.
    pub fn full_args(&self, progress: bool) -> Vec<String> {
        let mut all: Vec<String> = ["-hide_banner", "-loglevel", self.loglevel]
            .into_iter()
            .map(String::from)
            .collect();
        if self.tool == Tool::Ffmpeg {
            all.extend(["-nostdin", "-y"].map(String::from));
            if progress {
                all.extend(["-progress", "pipe:1", "-nostats"].map(String::from));
            }
        }
        all.extend(self.args.iter().cloned());
        all
    }

    /// Runs the command to completion and returns its standard output and error text.
    ///
    /// `on_frame` receives the frame count FFmpeg reports as it goes (every ~0.5 s).
    /// Errors: [`MediaError::Cancelled`] when `ctl.cancel` fires, [`MediaError::TimedOut`] after
    /// `ctl.timeout`; in both cases FFmpeg is killed first. [`MediaError::Ffmpeg`] with FFmpeg's
    /// error text when it exits non-zero; [`MediaError::MissingTool`] when it cannot start.
    pub async fn run(
        &self,
        toolchain: &Toolchain,
        ctl: &RunControl,
        on_frame: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<RunOutput, MediaError> {
        let program = match self.tool {
            Tool::Ffmpeg => &toolchain.ffmpeg,
            Tool::Ffprobe => &toolchain.ffprobe,
        };
        if self.tool == Tool::Ffmpeg && !self.has_output {
            return Err(MediaError::Internal("ffmpeg command has no output".into()));
        }
        let progress = on_frame.is_some();
        let mut child = Command::new(program)
            .args(self.full_args(progress))
            .current_dir(&self.sandbox.work)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| MediaError::MissingTool {
                tool: program.display().to_string(),
                source,
            })?;

        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let read_out = async {
            let mut collected = String::new();
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if progress {
                    if let Some(n) = line
                        .strip_prefix("frame=")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                    {
                        if let Some(f) = on_frame {
                            f(n);
                        }
                    }
                } else {
                    collected.push_str(&line);
                    collected.push('\n');
                }
            }
            collected
        };
        let read_err = async {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).to_string()
        };
        let work = async {
            let (out, err) = tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (status, out, err)
        };
        let deadline = async {
            match ctl.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        // Dropping `work` drops the child, and `kill_on_drop` kills FFmpeg.
        let (status, stdout, stderr) = tokio::select! {
            r = work => r,
            _ = ctl.cancel.cancelled() => return Err(MediaError::Cancelled),
            _ = deadline => return Err(MediaError::TimedOut(ctl.timeout.unwrap_or_default())),
        };
        let status =
            status.map_err(|e| MediaError::Internal(format!("waiting for ffmpeg: {e}")))?;
        if !status.success() {
            let tail: String = {
                let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
                lines[lines.len().saturating_sub(8)..].join("\n")
            };
            return Err(MediaError::Ffmpeg {
                status: status.code(),
                stderr: tail,
            });
        }
        Ok(RunOutput { stdout, stderr })
    }
}

/// Cancellation and time limit for one FFmpeg run.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Fires to stop the run; FFmpeg is killed.
    pub cancel: CancellationToken,
    /// Longest time the run may take.
    pub timeout: Option<Duration>,
}

/// What a finished run printed.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Standard output (empty when progress was parsed from it).
    pub stdout: String,
    /// Standard error (log lines at the chosen level).
    pub stderr: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> (tempfile::TempDir, Sandbox) {
        let dir = tempfile::tempdir().unwrap();
        for d in ["in", "work", "out"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let sb = Sandbox::new(
            &dir.path().join("in"),
            &dir.path().join("work"),
            &dir.path().join("out"),
        )
        .unwrap();
        (dir, sb)
    }

    #[test]
    fn inputs_get_forced_demuxers_and_the_file_protocol() {
        let (dir, sb) = sandbox();
        let png = dir.path().join("in/a.png");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\n0000000000").unwrap();
        let mut cmd = FfmpegCommand::ffmpeg(&sb);
        assert_eq!(cmd.input(&png, SourceFormat::Png, &[]).unwrap(), 0);
        let args = cmd.full_args(false).join(" ");
        assert!(
            args.contains("-protocol_whitelist file -f png_pipe -i file:/"),
            "{args}"
        );
        assert_eq!(cmd.key_args().last().unwrap(), "<input 0>");
    }

    #[test]
    fn paths_outside_the_folders_and_disguised_files_are_refused() {
        let (dir, sb) = sandbox();
        let outside = dir.path().join("secret.png");
        std::fs::write(&outside, b"\x89PNG\r\n\x1a\n0000000000").unwrap();
        let link = dir.path().join("in/link.png");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let mut cmd = FfmpegCommand::ffmpeg(&sb);
        assert!(matches!(
            cmd.input(&outside, SourceFormat::Png, &[]),
            Err(MediaError::OutsideSandbox { .. })
        ));
        assert!(matches!(
            cmd.input(&link, SourceFormat::Png, &[]),
            Err(MediaError::OutsideSandbox { .. })
        ));
        let playlist = dir.path().join("in/movie.mp4");
        std::fs::write(
            &playlist,
            b"#EXTM3U\n#EXTINF:10,\nhttp://example.com/a.ts\n",
        )
        .unwrap();
        let err = cmd
            .input(&playlist, SourceFormat::Mp4, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("movie.mp4") && err.contains("playlist"),
            "{err}"
        );
        assert!(cmd
            .output(&dir.path().join("elsewhere.mp4"), "mp4")
            .is_err());
        assert!(cmd.inputs().is_empty());
    }

    #[test]
    fn concat_lists_may_only_name_segments_inside_the_folders() {
        let (dir, sb) = sandbox();
        let list = dir.path().join("work/join.ffconcat");
        std::fs::write(&list, "ffconcat version 1.0\nfile '../secret.mp4'\n").unwrap();
        std::fs::write(dir.path().join("secret.mp4"), b"\0\0\0\x20ftypisom0000").unwrap();
        let mut cmd = FfmpegCommand::ffmpeg(&sb);
        assert!(matches!(
            cmd.concat_input(&list),
            Err(MediaError::OutsideSandbox { .. })
        ));
        std::fs::write(
            &list,
            "ffconcat version 1.0\nfile 'http://example.com/a.mp4'\n",
        )
        .unwrap();
        assert!(matches!(
            cmd.concat_input(&list),
            Err(MediaError::Input { .. })
        ));
        std::fs::write(dir.path().join("work/a.mp4"), b"\0\0\0\x20ftypisom0000").unwrap();
        std::fs::write(&list, "ffconcat version 1.0\nfile 'a.mp4'\n").unwrap();
        assert_eq!(cmd.concat_input(&list).unwrap(), 0);
    }

    #[test]
    fn filter_paths_must_be_plain_and_inside_work() {
        let (dir, sb) = sandbox();
        let cmd = FfmpegCommand::ffmpeg(&sb);
        std::fs::write(dir.path().join("work/cues.ass"), "x").unwrap();
        assert_eq!(
            cmd.filter_path(&dir.path().join("work/cues.ass")).unwrap(),
            "cues.ass"
        );
        std::fs::write(dir.path().join("work/bad name's.ass"), "x").unwrap();
        assert!(cmd
            .filter_path(&dir.path().join("work/bad name's.ass"))
            .is_err());
        std::fs::write(dir.path().join("in/x.ass"), "x").unwrap();
        assert!(matches!(
            cmd.filter_path(&dir.path().join("in/x.ass")),
            Err(MediaError::OutsideSandbox { .. })
        ));
    }
}
