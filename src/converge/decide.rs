//! What to do with a stack in a given state: a pure function, tested over every status.

use aws_sdk_cloudformation::types::StackStatus;

use super::model::Stack;

/// The next step toward "the stack is exactly what the spec says".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No stack (or one only reviewed, never executed): create it with a CREATE change set.
    Create,
    /// A failed first creation left nothing worth keeping: delete it, wait, then create.
    DeleteThenCreate,
    /// An operation is running: wait for it to settle (showing its events), then decide again.
    Wait,
    /// A rollback got stuck: continue it, wait, then update.
    ContinueRollbackThenUpdate,
    /// The stack is stable: update it with an UPDATE change set.
    Update,
    /// Nothing automatic is safe: stop and explain.
    Stop(String),
}

/// Decides from the stack's status (`None`: the stack does not exist).
pub fn decide(status: Option<&StackStatus>) -> Action {
    use StackStatus as S;
    let Some(status) = status else {
        return Action::Create;
    };
    match status {
        S::ReviewInProgress | S::DeleteComplete => Action::Create,
        S::RollbackComplete | S::RollbackFailed | S::CreateFailed => Action::DeleteThenCreate,
        S::CreateInProgress
        | S::DeleteInProgress
        | S::ImportInProgress
        | S::ImportRollbackInProgress
        | S::RollbackInProgress
        | S::UpdateCompleteCleanupInProgress
        | S::UpdateInProgress
        | S::UpdateRollbackCompleteCleanupInProgress
        | S::UpdateRollbackInProgress => Action::Wait,
        S::UpdateRollbackFailed => Action::ContinueRollbackThenUpdate,
        S::CreateComplete
        | S::UpdateComplete
        | S::UpdateFailed
        | S::UpdateRollbackComplete
        | S::ImportComplete
        | S::ImportRollbackComplete => Action::Update,
        S::DeleteFailed => Action::Stop(
            "the stack is DELETE_FAILED: some resources could not be deleted (listed above); \
             remove or retain them, then run `deployer down` again"
                .into(),
        ),
        S::ImportRollbackFailed => Action::Stop(
            "the stack is IMPORT_ROLLBACK_FAILED: fix the resources named above in the console, then retry".into(),
        ),
        other => Action::Stop(format!("the stack is in a status deployer does not know: {}", other.as_str())),
    }
}

/// An [`Action`] with the stack it was decided for: acting on it needs no second look.
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    /// Create it; a stack only reviewed (`REVIEW_IN_PROGRESS`) is created through.
    Create(Option<Stack>),
    /// Delete this failed creation, wait, then create.
    DeleteThenCreate(Stack),
    /// Wait for this stack's operation to settle, then decide again.
    Wait(Stack),
    /// Continue this stack's rollback, wait, then update.
    ContinueRollbackThenUpdate(Stack),
    /// Update this stack.
    Update(Stack),
    /// Stop: this stack needs a person, for this reason.
    Stop(Stack, String),
}

/// [`decide`] for a described stack, the stack carried along.
pub fn decide_for(stack: Option<Stack>) -> Decided {
    let Some(stack) = stack else {
        return Decided::Create(None);
    };
    match decide(Some(&stack.status)) {
        Action::Create => {
            let reviewed = stack.status == StackStatus::ReviewInProgress;
            Decided::Create(reviewed.then_some(stack))
        }
        Action::DeleteThenCreate => Decided::DeleteThenCreate(stack),
        Action::Wait => Decided::Wait(stack),
        Action::ContinueRollbackThenUpdate => Decided::ContinueRollbackThenUpdate(stack),
        Action::Update => Decided::Update(stack),
        Action::Stop(why) => Decided::Stop(stack, why),
    }
}

/// Whether an operation on the stack is still running.
pub fn is_in_progress(status: &StackStatus) -> bool {
    decide(Some(status)) == Action::Wait
}

/// Whether a settled status means the last operation did what was asked.
pub fn is_success(status: &StackStatus) -> bool {
    matches!(
        status,
        StackStatus::CreateComplete | StackStatus::UpdateComplete | StackStatus::ImportComplete
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_decision() {
        // `values()` lists every status the SDK knows: a new one fails here until it is decided.
        let mut seen = 0;
        for name in StackStatus::values() {
            let status = StackStatus::from(*name);
            let action = decide(Some(&status));
            let expected = match *name {
                "REVIEW_IN_PROGRESS" | "DELETE_COMPLETE" => Action::Create,
                "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED" => {
                    Action::DeleteThenCreate
                }
                "UPDATE_ROLLBACK_FAILED" => Action::ContinueRollbackThenUpdate,
                "CREATE_COMPLETE"
                | "UPDATE_COMPLETE"
                | "UPDATE_FAILED"
                | "UPDATE_ROLLBACK_COMPLETE"
                | "IMPORT_COMPLETE"
                | "IMPORT_ROLLBACK_COMPLETE" => Action::Update,
                "DELETE_FAILED" | "IMPORT_ROLLBACK_FAILED" => {
                    assert!(matches!(action, Action::Stop(_)), "{name}");
                    seen += 1;
                    continue;
                }
                n if n.ends_with("_IN_PROGRESS") => Action::Wait,
                n => panic!("status {n} has no expected decision in this test"),
            };
            assert_eq!(action, expected, "{name}");
            assert_eq!(is_in_progress(&status), expected == Action::Wait, "{name}");
            seen += 1;
        }
        assert_eq!(seen, 23, "CloudFormation has 23 stack statuses");
        assert_eq!(decide(None), Action::Create);
    }

    #[test]
    fn unknown_statuses_stop_rather_than_guess() {
        let action = decide(Some(&StackStatus::from("SOMETHING_NEW")));
        assert_eq!(
            action,
            Action::Stop("the stack is in a status deployer does not know: SOMETHING_NEW".into())
        );
    }

    #[test]
    fn success_is_only_a_completed_create_update_or_import() {
        for name in StackStatus::values() {
            let ok = matches!(
                *name,
                "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE"
            );
            assert_eq!(is_success(&StackStatus::from(*name)), ok, "{name}");
        }
    }
}
