//! What every test needs: run a step the way a learner does, and see what they see.
//!
//! A run's transcript is what the terminal shows: the command line as typed,
//! stdout and stderr interleaved on one pipe, and the exit status. The book
//! includes these transcripts (the insta snapshots) as its "Run it" blocks.
//!
//! Every run is also judged by what it left on the host: processes, mounts and
//! cgroups of *its own* (`HostState`), so that other containers on the machine,
//! Docker's say, neither fail a run nor hide a leak.
//!
//! One module a concern, each re-exported here, so that a test says `common::HostState`:
//!
//! - `project`: where the project is, what the tests need of the machine, scratch space;
//! - `run`: the steps, and running one as a learner does (as root, rootless, remapped);
//! - `transcript`: what a run shows, recorded as the book shows it, and its snapshots;
//! - `redactions`: what varies from run to run, hidden before a transcript is compared;
//! - `rootless`: user `nobody`, the learner without root, and their checkout;
//! - `attack_rootfs`: the rootfs with the attack program in it;
//! - `host`: what a run must leave as it was on the host (`HostState`);
//! - `cgroups`: where this process's cgroups are, and the workbook's own;
//! - `terminal`: a pseudo-terminal to type at, and the job-control session typed there.

#![allow(dead_code)] // each test file uses its own part of this module

mod attack_rootfs;
mod cgroups;
mod host;
mod project;
mod redactions;
mod rootless;
mod run;
mod terminal;
mod transcript;

#[allow(unused_imports)] // each test file uses its own part of what is re-exported here
pub use {
    attack_rootfs::attack_rootfs,
    cgroups::{
        BUSY_LOOP, cpu_and_wall_time, memory_on_cgroup_v1, own_memory_cgroup, workbook_cgroups,
    },
    host::{HostState, mount_table, run_on_shared_root},
    project::{PROJECT, require_root, require_rootfs, scratch_dir},
    redactions::{REDACTIONS, redact, redact_with},
    rootless::{AS_NOBODY, NOBODY, RootlessCheckout, as_nobody_after, run_line_rootless},
    run::{STEP1, STEP2, STEP3, STEP4, STEP5, STEPS, Step, as_a_learner, run_line, start_ready},
    terminal::{Terminal, job_control_session, wait_for_child, wait_for_descendant},
    transcript::{Run, shell_words, snapshot_body, transcript_of},
};
