"""A finished run's one announcement to the rest of the system: `RunFinished`, once its state is settled.

The planner publishes it; the cache records what the run used and made from it, with no
question back to the planner. With several planner replicas, the one that finishes a run
may not have heard of every step another replica saw: that replica writes them a moment
later, and the message goes out from whichever write makes the state complete.
"""

from __future__ import annotations

from artdag_common import subjects
from artdag_common.bus import Outgoing, event_message
from artdag_common.schemas import RunFinished, RunState, StepStatus


def unsettled(state: RunState) -> list[str]:
    """What a completed run's state does not show yet: the plan's cid, and steps that an executed
    step of the output's making read but that are not done. (A step found cached needed nothing:
    its inputs may never have run.)"""
    missing = [] if state.plan_cid else ["plan_cid"]
    stack = [state.output_step] if state.output_step else []
    seen: set[str] = set()
    while stack:
        step_id = stack.pop()
        step = state.steps.get(step_id)
        if step_id in seen or step is None:
            continue
        seen.add(step_id)
        if not step.status.done:
            missing.append(step.name)
        elif step.status == StepStatus.COMPLETED:
            stack.extend(step.inputs)
    return missing


def finished_message(state: RunState) -> Outgoing:
    """The `RunFinished` message of a finished run; de-duplicated by run id, so replicas that
    each see the settled state announce it once."""
    return event_message(
        subjects.run_finished(state.run_id),
        RunFinished(run_id=state.run_id, state=state),
        msg_id=f"finished.{state.run_id}",
    )
