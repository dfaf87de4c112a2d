//! Real PostgreSQL and MariaDB servers for the SQL import tests: Debian's packages
//! (`postgresql`, `mariadb-server`; scripts/test installs them), each started on a loopback port
//! in a temporary directory and stopped when dropped. A missing server fails the test with what
//! to install; it never skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 60 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL server.
pub struct Postgres {
    child: Child,
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    /// initdb (trust authentication, user `postgres`) and start on a free loopback port. As
    /// root, the server runs as the `postgres` user the package creates (it refuses root).
    pub fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .find(|b| b.join("initdb").exists())
            })
            .unwrap_or_else(|| {
                panic!(
                    "PostgreSQL is not installed: apt-get install postgresql (scripts/test does)"
                )
            });
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let as_server_user = |program: &str| {
            let mut command = if is_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(program));
                c
            } else {
                Command::new(bin.join(program))
            };
            command.stdin(Stdio::null());
            command
        };
        if is_root() {
            run(
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(dir.path()),
                "chown the PostgreSQL directory",
            );
        }
        run(
            as_server_user("initdb")
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data),
            "initdb",
        );
        let port = free_port();
        let log = dir.path().join("postgres.log");
        let child = as_server_user("postgres")
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
            ])
            .arg(dir.path())
            .args(["-c", "fsync=off"])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("postgres.err")).unwrap())
            .spawn()
            .unwrap();
        wait_for_port(port, "PostgreSQL", &dir.path().join("postgres.err"));
        let server = Postgres {
            child,
            dir,
            bin,
            port,
        };
        // The port answers a moment before connections are accepted.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.psql_ok("SELECT 1") {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL never accepted a connection"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `psql` on this server as `postgres`, running `sql`.
    fn psql(&self, sql: &str) -> Command {
        let mut command = Command::new(self.bin.join("psql"));
        let port = self.port.to_string();
        command.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-X", "-q"]);
        command.args(["-v", "ON_ERROR_STOP=1", "-c", sql]);
        command
    }

    fn psql_ok(&self, sql: &str) -> bool {
        self.psql(sql)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs SQL (statements separated by `;`), failing loudly.
    pub fn execute(&self, sql: &str) {
        run(&mut self.psql(sql), "psql");
    }

    /// The URL deployer connects with.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT to the server itself (the child may be `runuser`, which does not pass it on):
        // PostgreSQL's fast shutdown.
        let pid = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|text| {
                text.lines()
                    .next()
                    .and_then(|l| l.trim().parse::<i32>().ok())
            });
        if let Some(pid) = pid {
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

/// A MariaDB server.
pub struct MariaDb {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl MariaDb {
    /// mariadb-install-db and start on a free loopback port, without grant tables (any user,
    /// no password: the server lives for one test).
    pub fn start() -> MariaDb {
        let installer = ["mariadb-install-db", "mysql_install_db"]
            .into_iter()
            .find(|p| {
                Command::new("sh")
                    .args(["-c", &format!("command -v {p}")])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .unwrap_or_else(|| {
                panic!(
                    "MariaDB is not installed: apt-get install mariadb-server (scripts/test does)"
                )
            });
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let user = if is_root() {
            "root".to_string()
        } else {
            std::env::var("USER").unwrap_or_default()
        };
        run(
            Command::new(installer)
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--user={user}"))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
                .stdin(Stdio::null()),
            "mariadb-install-db",
        );
        let port = free_port();
        let log = dir.path().join("mariadb.log");
        let server = ["mariadbd", "mysqld"]
            .into_iter()
            .map(|p| {
                let sbin = Path::new("/usr/sbin").join(p);
                if sbin.exists() {
                    sbin
                } else {
                    PathBuf::from(p)
                }
            })
            .find(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from("mariadbd"));
        let child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!(
                "--socket={}",
                dir.path().join("mariadb.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mariadb.pid").display()
            ))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--user={user}"))
            .args([
                "--skip-grant-tables",
                "--skip-name-resolve",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, "MariaDB", &log);
        MariaDb { child, dir, port }
    }

    /// Runs SQL with the `mariadb` client, failing loudly.
    pub fn execute(&self, sql: &str) {
        let client = if Path::new("/usr/bin/mariadb").exists() {
            "mariadb"
        } else {
            "mysql"
        };
        run(
            Command::new(client).args([
                "-h",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "-u",
                "root",
                "--default-character-set=utf8mb4",
                "-e",
                sql,
            ]),
            "mariadb",
        );
    }

    /// The URL deployer connects with.
    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}
