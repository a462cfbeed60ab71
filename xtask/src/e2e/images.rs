//! The fleet's images, from this machine's files and this repository's binaries:
//! `outpost-e2e/device` (containerd, runc, outpostd, the CLI, the services' and the sample
//! module's OCI archives), `outpost-e2e/cloud` (outpost-cloud) and `outpost-e2e/rabbitmq`
//! (Debian's RabbitMQ and Erlang).

use std::path::Path;

use anyhow::Context as _;

use super::fleet::repo_file;
use super::rootfs::Rootfs;

/// The device image's tag.
pub const DEVICE: &str = "outpost-e2e/device:dev";
/// The cloud image's tag.
pub const CLOUD: &str = "outpost-e2e/cloud:dev";
/// The broker image's tag.
pub const RABBITMQ: &str = "outpost-e2e/rabbitmq:dev";

/// The hub image a runtime update rolls back from: its program exits at once.
pub const BROKEN_HUB: &str = "outpost/hub:broken";

const PATH: &str = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Builds the device image from the binaries in `bin`, in `work`.
pub fn device(bin: &Path, work: &Path) -> anyhow::Result<()> {
    let fs = Rootfs::new(&work.join("device"))?;
    fs.busybox()?;
    for (source, at) in [
        ("/usr/bin/containerd", "/usr/bin/containerd"),
        ("/usr/bin/containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2"),
        ("/usr/sbin/runc", "/usr/sbin/runc"),
    ] {
        fs.program(Path::new(source), at).with_context(|| format!("{source}: apt-get install containerd runc"))?;
    }
    for program in ["outpostd", "outpost", "outpost-logger"] {
        fs.program(&bin.join(program), &format!("/usr/local/bin/{program}"))?;
    }
    let images = work.join("device-images");
    crate::images::write_service_archives(bin, &images)?;
    for entry in std::fs::read_dir(&images)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        fs.file(&path, &format!("/usr/share/outpost/images/{name}"))?;
    }
    crate::images::write_program_archive(
        Path::new("/bin/false"),
        "outpost-hub",
        BROKEN_HUB,
        &work.join("hub-broken.tar"),
    )?;
    fs.file(&work.join("hub-broken.tar"), "/usr/share/outpost/images/hub-broken.tar")?;
    let sensor = crate::images::sensor_image(bin)?;
    let sensor_archive = work.join("simulated-temperature-sensor.tar");
    outpost_runtime::oci::write_archive(
        &sensor,
        &format!("outpost/simulated-temperature-sensor:{}", env!("CARGO_PKG_VERSION")),
        &sensor_archive,
    )?;
    fs.file(&sensor_archive, "/usr/share/outpost/images/modules/simulated-temperature-sensor.tar")?;
    fs.file(&repo_file("deploy/compose/device/containerd.toml"), "/etc/containerd/config.toml")?;
    fs.file(&repo_file("deploy/compose/device/entrypoint.sh"), "/entrypoint.sh")?;
    std::fs::set_permissions(work.join("device/entrypoint.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    fs.import(DEVICE, &[PATH, "ENTRYPOINT [\"/entrypoint.sh\"]"])
}

/// Builds the cloud image from the binaries in `bin`, in `work`.
pub fn cloud(bin: &Path, work: &Path) -> anyhow::Result<()> {
    let fs = Rootfs::new(&work.join("cloud"))?;
    fs.busybox()?;
    fs.program(&bin.join("outpost-cloud"), "/usr/local/bin/outpost-cloud")?;
    fs.program(&bin.join("outpost"), "/usr/local/bin/outpost")?;
    fs.file(&repo_file("deploy/compose/cloud/cloud.toml"), "/etc/outpost/cloud.toml")?;
    fs.import(
        CLOUD,
        &[PATH, "ENTRYPOINT [\"/usr/local/bin/outpost-cloud\", \"--config\", \"/etc/outpost/cloud.toml\"]"],
    )
}

/// Files under these prefixes are left out of the broker's image.
const UNNEEDED: &[&str] = &[
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/lintian/",
    "/etc/init.d/",
    "/etc/logrotate.d/",
    "/etc/default/",
    "/lib/systemd/",
    "/usr/lib/systemd/",
    "/usr/lib/ocf/",
    "/usr/sbin/",
];

fn lines(command: &mut std::process::Command) -> anyhow::Result<Vec<String>> {
    let out = command.output().with_context(|| format!("cannot run {command:?}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
}

fn installed(package: &str) -> bool {
    lines(std::process::Command::new("dpkg-query").args(["-W", "-f=${db:Status-Abbrev}", package]))
        .is_ok_and(|l| l.first().is_some_and(|s| s.starts_with("ii")))
}

/// Builds the broker image in `work` from Debian's `rabbitmq-server` and the Erlang
/// packages it depends on, as installed here.
pub fn rabbitmq(work: &Path) -> anyhow::Result<()> {
    use std::process::Command;
    if !installed("rabbitmq-server") {
        anyhow::bail!("rabbitmq-server is not installed (apt-get install rabbitmq-server)");
    }
    let mut packages = vec!["rabbitmq-server".to_owned()];
    let depends = lines(Command::new("apt-cache").args([
        "depends",
        "--recurse",
        "--no-recommends",
        "--no-suggests",
        "--no-conflicts",
        "--no-breaks",
        "--no-replaces",
        "--no-enhances",
        "rabbitmq-server",
    ]))?;
    for package in depends.iter().map(|l| l.trim()).filter(|l| l.starts_with("erlang-")) {
        if !packages.iter().any(|p| p == package) && installed(package) {
            packages.push(package.to_owned());
        }
    }
    let mut files: Vec<String> = lines(Command::new("dpkg").arg("-L").args(&packages))?
        .into_iter()
        .filter(|f| !UNNEEDED.iter().any(|u| f.starts_with(u)))
        // The merged-/usr links (/lib → usr/lib) stay the image's own directories.
        .filter(|f| !["/bin", "/sbin", "/lib", "/lib64"].contains(&f.as_str()))
        .filter(|f| std::fs::symlink_metadata(f).is_ok_and(|m| m.is_file() || m.file_type().is_symlink()))
        .collect();
    // The libraries the runtime's programs and native modules load.
    let mut libraries = Vec::new();
    for file in &files {
        let elf = (file.contains("/bin/") || file.contains(".so"))
            && std::fs::read(file).is_ok_and(|b| b.starts_with(b"\x7fELF"));
        if elf {
            for word in lines(Command::new("ldd").arg(file))?
                .iter()
                .flat_map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            {
                if word.starts_with('/') && !word.ends_with(':') && !libraries.contains(&word) {
                    libraries.push(word);
                }
            }
        }
    }
    files.sort();
    files.dedup();
    let fs = Rootfs::new(&work.join("rabbitmq"))?;
    let list = work.join("rabbitmq-files.txt");
    std::fs::write(&list, files.iter().map(|f| f.trim_start_matches('/')).collect::<Vec<_>>().join("\n"))?;
    crate::util::sh(
        Command::new("sh")
            .arg("-c")
            .arg("tar -C / --no-recursion -cf - -T \"$0\" | tar -C \"$1\" -xf -")
            .arg(&list)
            .arg(work.join("rabbitmq")),
    )?;
    // Libraries as real files at the paths the loader looks for (the host's are links
    // through the merged /usr).
    for library in libraries {
        let _ = std::fs::remove_file(work.join("rabbitmq").join(library.trim_start_matches('/')));
        fs.file(Path::new(&library), &library)?;
    }
    fs.busybox()?;
    fs.text(
        "/etc/passwd",
        "root:x:0:0:root:/var/lib/rabbitmq:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        0o644,
    )?;
    fs.file(&repo_file("deploy/compose/rabbitmq/rabbitmq.conf"), "/etc/rabbitmq/rabbitmq.conf")?;
    fs.file(&repo_file("deploy/compose/rabbitmq/enabled_plugins"), "/etc/rabbitmq/enabled_plugins")?;
    // The server and its CLI tools (both root, HOME=/var/lib/rabbitmq) share this cookie.
    fs.text("/var/lib/rabbitmq/.erlang.cookie", "OUTPOSTCOMPOSEFLEETCOOKIE", 0o400)?;
    std::fs::create_dir_all(work.join("rabbitmq/var/lib/rabbitmq/mnesia"))?;
    std::fs::create_dir_all(work.join("rabbitmq/var/log/rabbitmq"))?;
    fs.import(
        RABBITMQ,
        &[
            "ENV PATH=/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV HOME=/var/lib/rabbitmq",
            "ENV LANG=C.UTF-8",
            "ENV LC_ALL=C.UTF-8",
            "ENV RABBITMQ_LOGS=-",
            "ENV RABBITMQ_MNESIA_BASE=/var/lib/rabbitmq/mnesia",
            "ENV RABBITMQ_LOG_BASE=/var/log/rabbitmq",
            "ENV RABBITMQ_NODENAME=rabbit@rabbitmq",
            "WORKDIR /var/lib/rabbitmq",
            "ENTRYPOINT [\"/usr/lib/rabbitmq/bin/rabbitmq-server\"]",
        ],
    )
}
