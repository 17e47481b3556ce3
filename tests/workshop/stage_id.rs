//! A stage's identity, `N.K`: step N's stage K, as a learner types it (`just check 3.2`), as
//! the book and the `todo!()`s write it, and compared as the two numbers it is.

use std::fmt;
use std::str::FromStr;

/// Stage `stage` of step `step`: 3.2 is step 3's second stage. Stages are in order by step,
/// then by stage: 3.9 comes before 3.10, and both before 4.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StageId {
    pub step: u8,
    pub stage: u8,
}

impl StageId {
    /// The stage that `text`, `N.K`, names: for the tables, where a stage that is not `N.K`
    /// does not compile.
    pub const fn of(text: &str) -> StageId {
        match parse(text) {
            Some(id) => id,
            None => panic!("a stage is N.K: step N's stage K, such as 3.2"),
        }
    }

    /// `N.0`, before step N's first stage: every stage of the step comes after it.
    pub const fn before_first(step: u8) -> StageId {
        StageId { step, stage: 0 }
    }

    /// `N-K`, as a cargo bin's name holds it: `skeleton-3-1` for stage 3.1.
    pub fn dashed(self) -> String {
        format!("{}-{}", self.step, self.stage)
    }
}

/// `N.K`, as a learner types it.
impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}.{}", self.step, self.stage)
    }
}

impl FromStr for StageId {
    type Err = String;

    fn from_str(text: &str) -> Result<StageId, String> {
        parse(text).ok_or_else(|| format!("{text:?} is no stage: a stage is N.K, such as 3.2"))
    }
}

/// `N.K`, two numbers and a dot between them; None for anything else.
const fn parse(text: &str) -> Option<StageId> {
    let bytes = text.as_bytes();
    let mut numbers = [0u8; 2];
    let (mut which, mut digits, mut at) = (0, 0, 0);
    while at < bytes.len() {
        match bytes[at] {
            b'.' if which == 0 && digits > 0 => (which, digits) = (1, 0),
            digit @ b'0'..=b'9' => {
                let Some(tens) = numbers[which].checked_mul(10) else { return None };
                let Some(number) = tens.checked_add(digit - b'0') else { return None };
                numbers[which] = number;
                digits += 1;
            }
            _ => return None,
        }
        at += 1;
    }
    match which == 1 && digits > 0 {
        true => Some(StageId { step: numbers[0], stage: numbers[1] }),
        false => None,
    }
}
