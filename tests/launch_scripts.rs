//! The start wrapper of `domain::launch` run by a real POSIX shell (`sh`, dash where
//! `/bin/sh` is dash, as in the Debian guest), spawned the way the guest agent does: argv
//! as given, a clean environment plus the plan's variables, from `/`. The command and its
//! arguments pass verbatim; the working directory, a missing directory or command, a port
//! a real listening socket holds, and cgroup limits against a fake cgroup tree in a
//! temporary folder (never the host's own hierarchy: the tests don't mount).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use chrono::Utc;
use uuid::Uuid;
use webvm_appserver::domain::launch::*;
use webvm_appserver::model::{AppName, Application, DeploymentConfig, ExecutionConfig, Port};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn notices(&self) -> Vec<LaunchNotice> {
        self.stderr.lines().filter_map(parse_launch_lines).collect()
    }
}

fn app(name: &str, cwd: &str, command: &str, arguments: &[&str], port: Port) -> Application {
    let name = AppName::parse(name).expect("a valid name");
    let deployment = DeploymentConfig {
        deployment_path: DeploymentConfig::default_path(&name),
        ..DeploymentConfig::default()
    };
    let execution = ExecutionConfig {
        command: command.to_owned(),
        arguments: arguments.iter().map(|a| (*a).to_owned()).collect(),
        working_directory: cwd.to_owned(),
        port: Some(port),
        ..ExecutionConfig::default()
    };
    Application::new(Uuid::from_u128(1), name, deployment, execution, Utc::now())
}

/// Runs argv as the agent would: no shell of ours, the agent's environment and the plan's.
fn spawn(argv: &[String], env: &[(String, String)]) -> Run {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(SPAWN_CWD)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .envs(env.iter().map(|(name, value)| (name, value)))
        .output()
        .expect("sh runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn launch(app: &Application, cgroups: &Cgroups) -> Run {
    let plan = plan_launch_with(app, &BTreeMap::new(), cgroups).expect("a plan");
    spawn(&plan.argv, &plan.env)
}

/// A cgroup root that is an empty temporary folder: not cgroup v2, and never mounted.
fn no_cgroups(folder: &Path) -> Cgroups {
    Cgroups {
        root: folder.join("no-cgroup").to_str().expect("UTF-8").to_owned(),
        mount: false,
    }
}

/// A port nothing listens on (bound and released; the kernel hands out another next).
fn free_port() -> Port {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    Port::parse(i64::from(port)).expect("an ephemeral port is above 1024")
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

fn utf8(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

#[test]
fn the_command_gets_its_arguments_verbatim_in_its_folder() {
    let folder = temp();
    let cwd = folder.path().join("my 'app' $HOME `id` dir");
    std::fs::create_dir(&cwd).expect("mkdir");
    let cwd = utf8(&cwd);
    let nasty = [
        "a b",
        "it's",
        "$HOME",
        "\"q\"",
        "`id`",
        "$(touch pwned)",
        "*",
        "",
        "-n",
        "new\nline",
        "ünï",
    ];
    let port = free_port();
    let mut arguments = vec!["%s|"];
    arguments.extend(nasty);
    let printf = app("hello", &cwd, "printf", &arguments, port);
    let run = launch(&printf, &no_cgroups(folder.path()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{}|", nasty.join("|")));
    assert_eq!(run.stderr, "");
    assert!(!Path::new(&format!("{cwd}/pwned")).exists());

    // The working directory, PORT and the variables; the wrapper's own variables don't
    // leak into the app's environment, and the app keeps the wrapper's pid (exec).
    let mut shell = app(
        "hello",
        &cwd,
        "sh",
        &[
            "-c",
            "printf '%s\\n' \"$(pwd)\" \"$PORT\" \"$i\" \"$why\" \"$PATH\" \"$X\"",
        ],
        port,
    );
    shell.execution.environment = BTreeMap::from([
        ("i".to_owned(), "mine".to_owned()),
        ("why".to_owned(), "also mine".to_owned()),
        ("X".to_owned(), "it's $(x)".to_owned()),
    ]);
    let run = launch(&shell, &no_cgroups(folder.path()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            cwd.as_str(),
            &port.get().to_string(),
            "mine",
            "also mine",
            "/usr/local/bin:/usr/bin:/bin",
            "it's $(x)",
        ]
    );

    // A relative command resolves in the working directory.
    std::fs::write(
        format!("{cwd}/run.sh"),
        "#!/bin/sh\necho \"ran $1\"\nexit 3\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        format!("{cwd}/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let script = app("hello", &cwd, "./run.sh", &["x y"], port);
    let run = launch(&script, &no_cgroups(folder.path()));
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (3, "ran x y\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_folder_or_command_is_a_notice() {
    let folder = temp();
    let missing = utf8(&folder.path().join("not here"));
    let run = launch(
        &app("hello", &missing, "true", &[], free_port()),
        &no_cgroups(folder.path()),
    );
    assert_eq!(run.code, EXIT_NO_DIRECTORY, "{}", run.stderr);
    assert_eq!(
        run.notices(),
        [LaunchNotice::NoDirectory {
            path: missing.clone()
        }]
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    let cwd = utf8(folder.path());
    for command in ["no-such-command-webvm", "./nothing here", "/no/such/path"] {
        let run = launch(
            &app("hello", &cwd, command, &["x"], free_port()),
            &no_cgroups(folder.path()),
        );
        assert_eq!(run.code, EXIT_NO_COMMAND, "{command}: {}", run.stderr);
        assert_eq!(
            run.notices(),
            [LaunchNotice::NoCommand {
                command: command.to_owned()
            }],
            "{}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
}

#[test]
fn a_taken_port_is_found_with_its_owner() {
    if std::fs::read_to_string("/proc/net/tcp").is_err() {
        eprintln!("skipped: /proc/net/tcp is not readable here");
        return;
    }
    let folder = temp();
    let cwd = utf8(folder.path());
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = Port::parse(i64::from(held.local_addr().expect("address").port())).expect("port");
    let own_comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
    let expected = LaunchNotice::PortInUse {
        port: taken.get(),
        pid: Some(std::process::id()),
        comm: Some(own_comm.trim_end().to_owned()),
    };
    let run = launch(
        &app("hello", &cwd, "echo", &["started"], taken),
        &no_cgroups(folder.path()),
    );
    assert_eq!(run.code, EXIT_PORT_IN_USE, "{}", run.stderr);
    assert_eq!(run.stdout, "", "the command never ran");
    assert_eq!(
        run.notices(),
        std::slice::from_ref(&expected),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    // An additional port counts as much as the primary one.
    let mut extra = app("hello", &cwd, "echo", &["started"], free_port());
    extra.execution.additional_ports = Some(vec![free_port(), taken]);
    let run = launch(&extra, &no_cgroups(folder.path()));
    assert_eq!(run.code, EXIT_PORT_IN_USE, "{}", run.stderr);
    assert_eq!(run.notices(), [expected], "{}", run.stderr);

    // A socket that is only connected (not listening) on another port does not count.
    let client =
        std::net::TcpStream::connect(held.local_addr().expect("address")).expect("connect");
    let client_port = client.local_addr().expect("address").port();
    if let Ok(port) = Port::parse(i64::from(client_port)) {
        let run = launch(
            &app("hello", &cwd, "echo", &["started"], port),
            &no_cgroups(folder.path()),
        );
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (0, "started\n"),
            "{}",
            run.stderr
        );
    }

    // IPv6 listeners are in /proc/net/tcp6.
    if let Ok(held6) = TcpListener::bind("[::1]:0") {
        let port6 = held6.local_addr().expect("address").port();
        let run = launch(
            &app(
                "hello",
                &cwd,
                "echo",
                &[],
                Port::parse(i64::from(port6)).expect("port"),
            ),
            &no_cgroups(folder.path()),
        );
        assert_eq!(run.code, EXIT_PORT_IN_USE, "{}", run.stderr);
        assert!(
            matches!(run.notices()[..], [LaunchNotice::PortInUse { port, .. }] if port == port6),
            "{}",
            run.stderr
        );
    } else {
        eprintln!("IPv6 loopback unavailable: tcp6 not checked");
    }
}

fn limited(cwd: &str, command: &str, arguments: &[&str]) -> Application {
    let mut app = app("Hello", cwd, command, arguments, free_port());
    app.execution.memory_limit = Some(64);
    app.execution.cpu_limit = Some(50.0);
    app
}

#[test]
fn limits_without_cgroup_v2_are_reported_and_the_app_starts() {
    let folder = temp();
    let cwd = utf8(folder.path());
    let run = launch(&limited(&cwd, "echo", &["up"]), &no_cgroups(folder.path()));
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "up\n"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.notices(),
        [
            LaunchNotice::LimitUnsupported {
                limit: LimitKind::Memory,
                reason: "no-cgroup2".into()
            },
            LaunchNotice::LimitUnsupported {
                limit: LimitKind::Cpu,
                reason: "no-cgroup2".into()
            },
        ]
    );
    assert_eq!(run.stderr.lines().count(), 2, "{}", run.stderr);
}

/// A cgroup v2 tree as plain files: the root's controllers, and the app's group with the
/// interface files a real one would show.
fn fake_cgroups(folder: &Path, controllers: &str, files: &[&str]) -> (Cgroups, String) {
    let root = folder.join("cgroup root's");
    let group = root.join("webvm/hello");
    std::fs::create_dir_all(&group).expect("mkdir");
    std::fs::write(root.join("cgroup.controllers"), controllers).expect("write");
    for file in ["cgroup.subtree_control", "webvm/cgroup.subtree_control"] {
        std::fs::write(root.join(file), "").expect("write");
    }
    for file in files {
        std::fs::write(group.join(file), "max\n").expect("write");
    }
    let cgroups = Cgroups {
        root: utf8(&root),
        mount: false,
    };
    (cgroups, utf8(&group))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

#[test]
fn limits_are_written_and_the_app_joins_its_group() {
    let folder = temp();
    let cwd = utf8(folder.path());
    let (cgroups, group) = fake_cgroups(
        folder.path(),
        "cpuset cpu io memory hugetlb pids\n",
        &["memory.max", "memory.swap.max", "cpu.max", "cgroup.procs"],
    );
    let app = limited(&cwd, "sh", &["-c", "echo $$"]);
    let plan = plan_launch_with(&app, &BTreeMap::new(), &cgroups).expect("plan");
    assert_eq!(plan.cgroup.as_deref(), Some(group.as_str()));
    let run = spawn(&plan.argv, &plan.env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "", "every limit applied");
    assert_eq!(read(&format!("{group}/memory.max")), "67108864\n");
    assert_eq!(read(&format!("{group}/memory.swap.max")), "0\n");
    assert_eq!(read(&format!("{group}/cpu.max")), "50000 100000\n");
    assert_eq!(
        read(&format!("{group}/cgroup.procs")),
        run.stdout,
        "the pid that joined is the app's"
    );
    assert!(read(&format!("{}/cgroup.subtree_control", cgroups.root)).starts_with('+'));
    assert!(read(&format!("{}/webvm/cgroup.subtree_control", cgroups.root)).starts_with('+'));
}

#[test]
fn each_limit_that_fails_says_why() {
    let folder = temp();
    let cwd = utf8(folder.path());
    // No memory controller in the kernel; cpu.max a folder, so writing it fails.
    let (cgroups, group) = fake_cgroups(folder.path(), "cpu pids", &["cgroup.procs"]);
    std::fs::create_dir(format!("{group}/cpu.max")).expect("mkdir");
    let run = launch(&limited(&cwd, "echo", &["up"]), &cgroups);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "up\n"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.notices(),
        [
            LaunchNotice::LimitUnsupported {
                limit: LimitKind::Memory,
                reason: "controller-unavailable".into()
            },
            LaunchNotice::LimitUnsupported {
                limit: LimitKind::Cpu,
                reason: "write-failed".into()
            },
        ],
        "{}",
        run.stderr
    );
    assert_eq!(
        read(&format!("{group}/cgroup.procs")),
        "max\n",
        "nothing applied, no move"
    );

    // Both written, but the group can't be joined.
    let other = temp();
    let (cgroups, group) = fake_cgroups(other.path(), "cpu memory", &["memory.max", "cpu.max"]);
    std::fs::create_dir(format!("{group}/cgroup.procs")).expect("mkdir");
    let run = launch(&limited(&cwd, "echo", &["up"]), &cgroups);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "up\n"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.notices(),
        [
            LaunchNotice::LimitUnsupported {
                limit: LimitKind::Memory,
                reason: "move-failed".into()
            },
            LaunchNotice::LimitUnsupported {
                limit: LimitKind::Cpu,
                reason: "move-failed".into()
            },
        ],
        "{}",
        run.stderr
    );

    // The group can't be created: the parent is a file.
    let third = temp();
    let root = third.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(root.join("cgroup.controllers"), "cpu memory\n").expect("write");
    std::fs::write(root.join("webvm"), "").expect("write");
    let cgroups = Cgroups {
        root: utf8(&root),
        mount: false,
    };
    let run = launch(&limited(&cwd, "echo", &["up"]), &cgroups);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "up\n"),
        "{}",
        run.stderr
    );
    let reasons: Vec<String> = run
        .notices()
        .into_iter()
        .filter_map(|notice| match notice {
            LaunchNotice::LimitUnsupported { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["mkdir-failed", "mkdir-failed"], "{}", run.stderr);
}

#[test]
fn events_and_cleanup_of_the_group() {
    let folder = temp();
    let (cgroups, group) = fake_cgroups(folder.path(), "cpu memory", &[]);
    let name = AppName::parse("hello").expect("valid");
    assert_eq!(cgroups.group(name.as_str()), group);
    std::fs::write(
        format!("{group}/memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
    )
    .expect("write");
    let run = spawn(&cgroups.events_argv(name.as_str()), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(oom_kills(&run.stdout), Some(1));
    assert_eq!(
        describe_exit(None, Some(9), oom_kills(&run.stdout).unwrap_or(0), Some(64)),
        "killed: out of memory (limit 64 MB)"
    );

    // A group still holding something is reported busy after a second, and stays.
    let run = spawn(&cgroups.cleanup_argv(name.as_str()), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(Path::new(&group).exists());
    // An empty group is removed; a missing one is fine, and has no events.
    std::fs::remove_file(format!("{group}/memory.events")).expect("rm");
    let run = spawn(&cgroups.cleanup_argv(name.as_str()), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!Path::new(&group).exists());
    let run = spawn(&cgroups.cleanup_argv(name.as_str()), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = spawn(&cgroups.events_argv(name.as_str()), &[]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
}
