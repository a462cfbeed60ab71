//! Container images without a base image: a root file system assembled from this machine's
//! files (programs with the shared libraries `ldd` names, busybox for a shell) and this
//! repository's, then `docker import`ed. No registry is needed, and the images hold only
//! what runs in them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::util::sh;

/// A root file system being assembled in a directory.
pub struct Rootfs {
    dir: PathBuf,
}

/// The shared libraries (and loader) `program` needs, as absolute paths.
fn libraries(program: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(program).output().context("cannot run ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || !out.status.success() {
        return Ok(Vec::new());
    }
    Ok(text
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect())
}

impl Rootfs {
    /// An empty file system in `dir` (emptied first) with the usual directories and
    /// minimal account files.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
        }
        let rootfs = Self { dir: dir.to_owned() };
        for d in [
            "bin",
            "sbin",
            "usr/bin",
            "usr/sbin",
            "usr/local/bin",
            "lib",
            "lib64",
            "etc",
            "proc",
            "sys",
            "dev",
            "run",
            "root",
            "var/lib",
            "var/log",
        ] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        std::fs::create_dir_all(dir.join("tmp"))?;
        sh(Command::new("chmod").arg("1777").arg(dir.join("tmp")))?;
        rootfs.text(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            0o644,
        )?;
        rootfs.text("/etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644)?;
        rootfs.text("/etc/nsswitch.conf", "hosts: files dns\n", 0o644)?;
        for empty in ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"] {
            rootfs.text(empty, "", 0o644)?;
        }
        Ok(rootfs)
    }

    fn at(&self, path: &str) -> PathBuf {
        self.dir.join(path.trim_start_matches('/'))
    }

    /// Writes `content` at `path`.
    pub fn text(&self, path: &str, content: &str, mode: u32) -> anyhow::Result<()> {
        let target = self.at(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)?;
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        Ok(())
    }

    /// Copies the file `source` (following links) to `path`.
    pub fn file(&self, source: &Path, path: &str) -> anyhow::Result<()> {
        let target = self.at(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(source, &target).with_context(|| format!("cannot copy {}", source.display()))?;
        Ok(())
    }

    /// Copies the program `source` to `path`, with the libraries it loads at their paths.
    pub fn program(&self, source: &Path, path: &str) -> anyhow::Result<()> {
        if !source.is_file() {
            bail!("{} does not exist", source.display());
        }
        self.file(source, path)?;
        for library in libraries(source)? {
            let at = library.display().to_string();
            if !self.at(&at).exists() {
                self.file(&library, &at)?;
            }
        }
        Ok(())
    }

    /// Busybox (Debian's static build) at /bin/busybox with every applet linked to it.
    pub fn busybox(&self) -> anyhow::Result<()> {
        let busybox = Path::new("/bin/busybox");
        self.file(busybox, "/bin/busybox")?;
        std::fs::set_permissions(self.at("/bin/busybox"), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let list = Command::new(busybox)
            .arg("--list")
            .output()
            .context("cannot run busybox (apt-get install busybox-static)")?;
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let link = self.at(&format!("/bin/{applet}"));
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link)?;
            }
        }
        Ok(())
    }

    /// Imports the file system as image `tag` with Dockerfile-style `changes`
    /// (`ENTRYPOINT [...]`, `ENV K=V`).
    pub fn import(&self, tag: &str, changes: &[&str]) -> anyhow::Result<()> {
        let mut import = String::from("tar --numeric-owner -C \"$0\" -cf - . | docker import");
        for change in changes {
            import.push_str(&format!(" --change '{change}'"));
        }
        import.push_str(&format!(" - {tag} >/dev/null"));
        sh(Command::new("sh").arg("-c").arg(import).arg(&self.dir))
    }
}
