//! STUB (replaced by the jobs work item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(String);
impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule, String> {
        Ok(Schedule(s.to_string()))
    }
}
