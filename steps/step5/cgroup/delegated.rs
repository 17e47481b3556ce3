//! Rootless cgroups (book: chapter 5, "Without root"). A user may not make cgroups anywhere in
//! the tree, but cgroup v2 lets root *delegate* a subtree: chown a cgroup's directory and its
//! cgroup.procs, cgroup.subtree_control and cgroup.threads to the user, who may then make and
//! limit cgroups beneath it. systemd delegates one to every user (`user@UID.service`), and
//! `systemd-run --user --scope -p Delegate=yes CMD` runs CMD alone in a delegated cgroup of its
//! own: the justfile runs a rootless step 5 that way. v1 has no safe delegation.
//!
//! v2 also lets a writer move a process only between cgroups whose common ancestor's
//! cgroup.procs it may write, and a cgroup with processes may not hand controllers to its
//! children. So we use the cgroup we run in, which must be ours: we move ourselves into a leaf
//! of it, `runtime-PID`, enable the controllers in it, and make the container's cgroup beside
//! our leaf. At the end we undo all three, and leave the cgroup as we found it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use color_eyre::Section;
use color_eyre::eyre::{Result, WrapErr, eyre};
use nix::unistd::Uid;

use super::trees::Tree;
use super::{mkdir, write};

/// What we changed in the delegated cgroup, to undo it.
#[derive(Debug)]
pub struct Delegated {
    /// The cgroup we ran in, delegated to us.
    own: PathBuf,
    /// The leaf we moved ourselves into.
    leaf: PathBuf,
    /// "+memory +pids": what we enabled in `own`'s cgroup.subtree_control.
    enabled: Vec<String>,
}

/// A rootless run's limits need cgroup v2: say so, with the way out, for a v1 controller.
pub fn check_v2(trees: &[Tree]) -> Result<()> {
    match trees.iter().find(|tree| !tree.v2) {
        Some(tree) => Err(eyre!(
            "rootless, cgroup limits need cgroup v2; the {} controller is on cgroup v1 here, \
             at {:?}, where a user may make no cgroup",
            tree.controllers.join(" and "),
            tree.mount
        ))
        .suggestion("run as root (`sudo`), or leave the limits out"),
        None => Ok(()),
    }
}

/// Make the cgroup we run in ready to hold the container's: check that it is delegated to us
/// with the controllers we need, move ourselves into a leaf of it, and enable the controllers
/// for its children. Returns it, the container's cgroup's parent.
pub fn prepare(tree: &Tree) -> Result<(PathBuf, Delegated)> {
    let own = tree.mount.join(tree.own.trim_start_matches('/'));
    let procs = own.join("cgroup.procs");
    let owner = fs::metadata(&procs).wrap_err_with(|| format!("cannot stat {procs:?}"))?.uid();
    if owner != Uid::effective().as_raw() {
        return Err(eyre!(
            "rootless, cgroup limits need a cgroup delegated to you: {own:?} is not"
        ))
        .suggestion(
            "run it in one, as `just step5` does: `systemd-run --user --scope -p \
                 Delegate=yes target/debug/step5 run …`; or run as root (`sudo`)",
        );
    }
    let offered = fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
    if let Some(missing) =
        tree.controllers.iter().find(|c| !offered.split_whitespace().any(|o| o == **c))
    {
        return Err(eyre!("the {missing} controller is not delegated to you in {own:?}"))
            .suggestion(
                "systemd before 252 delegates memory and pids, not cpu: leave out --cpus, or \
                 add `Delegate=cpu` to user@.service; or run as root (`sudo`)",
            );
    }
    let leaf = own.join(format!("runtime-{}", std::process::id()));
    mkdir(&leaf)?;
    let mut delegated = Delegated { own: own.clone(), leaf, enabled: Vec::new() };
    match delegated.enter(tree) {
        Ok(()) => Ok((own, delegated)),
        Err(report) => {
            let _ = delegated.undo();
            Err(report)
        }
    }
}

impl Delegated {
    /// Move ourselves into our leaf, then enable the controllers that `own` does not hand
    /// down yet: v2 allows that only in a cgroup without processes of its own.
    fn enter(&mut self, tree: &Tree) -> Result<()> {
        let moved = write(&self.leaf.join("cgroup.procs"), "0");
        moved.wrap_err("cannot move the runtime into a leaf of its cgroup")?;
        let file = self.own.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&file).unwrap_or_default();
        for controller in &tree.controllers {
            if !enabled.split_whitespace().any(|e| e == *controller) {
                self.enabled.push(controller.to_string());
            }
        }
        if self.enabled.is_empty() {
            return Ok(());
        }
        let value = self.enabled.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
        let context = || format!("cannot enable {value:?} in {:?}", self.own);
        match write(&file, &value) {
            Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
                Err(e).wrap_err_with(context).suggestion(
                    "other processes run in the runtime's cgroup: run it alone in one, with \
                     `systemd-run --user --scope -p Delegate=yes target/debug/step5 run …`",
                )
            }
            result => result.wrap_err_with(context),
        }
    }

    /// Undo `prepare`, once the container's cgroup is gone: the controllers off again, back
    /// into the cgroup we came from, our leaf removed. Each is tried whatever the one before
    /// did (`prepare` calls it half-way too); the first error is returned.
    pub fn undo(&self) -> Result<()> {
        let mut first_error = None;
        if !self.enabled.is_empty() {
            let value = self.enabled.iter().map(|c| format!("-{c}")).collect::<Vec<_>>().join(" ");
            let disabled = write(&self.own.join("cgroup.subtree_control"), &value)
                .wrap_err_with(|| format!("cannot disable {value:?} in {:?}", self.own));
            first_error = disabled.err();
        }
        let back = write(&self.own.join("cgroup.procs"), "0")
            .wrap_err_with(|| format!("cannot move the runtime back to {:?}", self.own));
        first_error = first_error.or(back.err());
        let removed = super::robustness::rmdir(&self.leaf);
        first_error.or(removed.err()).map_or(Ok(()), Err)
    }
}
