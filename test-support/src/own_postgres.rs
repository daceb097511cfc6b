//! A PostgreSQL server of a test's own, so the test can crash and restart it (failure
//! injection) without touching the shared server other tests use.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
//! `postgres` user, in a directory that user owns.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian's PostgreSQL 15 puts `initdb`, `pg_ctl` and friends.
const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
const DATABASE: &str = "gate";

pub struct OwnPostgres {
    /// `postgres://` URL of an empty database on this server.
    pub url: String,
    dir: PathBuf,
    port: u16,
}

impl OwnPostgres {
    /// Initialises and starts a server on a free port, with an empty database. `None` (with a
    /// note) when the PostgreSQL binaries are missing, unless `REQUIRE_POSTGRES` is set: then
    /// it panics.
    pub fn start() -> Option<OwnPostgres> {
        if !Path::new(BIN_DIR).join("initdb").exists() {
            assert!(
                std::env::var("REQUIRE_POSTGRES").is_err(),
                "REQUIRE_POSTGRES is set but there is no initdb in {BIN_DIR}"
            );
            eprintln!("private PostgreSQL test skipped: no initdb in {BIN_DIR}");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("gate-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("create the server's directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let server = OwnPostgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}"),
            dir,
            port,
        };
        if running_as_root() {
            run(Command::new("chown").arg("postgres:").arg(&server.dir));
        }
        let data = server.data_dir();
        run(server
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        server.start_again();
        run(server
            .command("createdb")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .arg(DATABASE));
        Some(server)
    }

    /// Kills the server as a crash would (`-m immediate`: no goodbye to clients, crash
    /// recovery on the next start).
    pub fn crash(&self) {
        run(self.pg_ctl("stop").args(["-m", "immediate"]));
    }

    /// Starts the server again (or for the first time), and waits until it takes connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        run(self
            .pg_ctl("start")
            .arg("-o")
            .arg(options)
            .arg("-l")
            .arg(self.dir.join("server.log")));
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl(&self, action: &str) -> Command {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl.arg("-D").arg(self.data_dir()).args(["-w", action]);
        pg_ctl
    }

    /// A PostgreSQL program, run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let program = Path::new(BIN_DIR).join(program);
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.current_dir(&self.dir).stdout(Stdio::null());
        command
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl("stop")
            .args(["-m", "immediate"])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn run(command: &mut Command) {
    let status = command.status().expect("run a PostgreSQL program");
    assert!(status.success(), "{command:?} failed: {status}");
}
