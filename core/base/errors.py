"""The errors Countersign raises.

One base class, a small tree of named subclasses. Each class's docstring is
its default message; a specific message may be given instead. Every interface
(CLI, REST, dashboard) shows ``str(error)`` as a plain, one-line reason.
"""

from __future__ import annotations


def quoted(value: object) -> str:
    """``value`` in single quotes for a message, as written: no Python repr escapes
    (``It's "late"`` stays so); only what cannot be shown on one line (line breaks,
    control characters) is written as an escape (``\\n``)."""
    text = str(value)
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return f"'{shown}'"


class CountersignError(Exception):
    """Countersign could not do that."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


# -- the kinds: every interface maps these six (REST status, CLI exit code, dashboard level) --


class NotFound(CountersignError):
    """No such object."""


class Conflict(CountersignError):
    """That is refused in the object's current state."""


class Invalid(CountersignError):
    """The request or answer is invalid."""


class Forbidden(CountersignError):
    """You are not allowed to do that."""


class Unauthenticated(CountersignError):
    """Sign in or send an API token (Authorization: Bearer <token>)."""


class Unavailable(CountersignError):
    """A service Countersign needs is unavailable."""


KINDS: tuple[type[CountersignError], ...] = (
    NotFound,
    Conflict,
    Invalid,
    Forbidden,
    Unauthenticated,
    Unavailable,
)


def kind_of(error: CountersignError) -> type[CountersignError] | None:
    """The kind an error belongs to (None only for a bare ``CountersignError``)."""
    return next((kind for kind in KINDS if isinstance(error, kind)), None)


class DefinitionError(Invalid):
    """The workflow definition is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("The workflow definition is invalid: " + "; ".join(self.problems))


class ApproverOutsideTenant(DefinitionError):
    """An approver named is a user of another tenant than the workflow's: they could
    never see or answer its request (core.store.tenancy), so it is refused up front."""


class WorkflowNotFound(NotFound):
    """No workflow has that id."""


class ApprovalNotFound(NotFound):
    """No approval request has that id."""


class CheckpointNotFound(NotFound):
    """No such checkpoint in this workflow."""


class ReservedCheckpointName(Invalid):
    """That checkpoint name is reserved for the checkpoints Countersign takes itself."""


class AlertNotFound(NotFound):
    """No alert has that id."""


class InvalidTransition(Conflict):
    """That status change is not allowed."""


class ApprovalClosed(Conflict):
    """This approval request is already decided, expired or cancelled."""


class NotAuthorized(Forbidden):
    """You are not allowed to do that."""

    def __init__(self, message: str | None = None, *, action: str | None = None) -> None:
        # The named action refused (core.identity.permissions), when there is one.
        self.action = action
        super().__init__(message)


class AlreadyVoted(Conflict):
    """You have already answered this approval request."""


class InvalidResponse(Invalid):
    """The answer does not match the approval's form."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("The answer is invalid: " + "; ".join(self.problems))


class InvalidInput(Invalid):
    """The workflow input is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("The workflow input is invalid: " + "; ".join(self.problems))


class UnstorableOutput(Invalid):
    """A step's output holds what no database can store; the step fails, naming where."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("The step's output cannot be stored: " + "; ".join(self.problems))


class NulCharacter(InvalidInput):
    """A value holds a NUL character, which nothing stored holds (PostgreSQL cannot even compare one)."""

    def __init__(self) -> None:
        self.problems = ["a value holds a NUL character"]
        CountersignError.__init__(self, self.__doc__ or "")


class LoneSurrogate(InvalidInput):
    """A value holds a lone UTF-16 surrogate, which is not Unicode text: nothing stored holds one."""

    def __init__(self) -> None:
        self.problems = ["a value holds a lone surrogate (not Unicode text)"]
        CountersignError.__init__(self, self.__doc__ or "")


class TooLong(Invalid):
    """A value is longer than Countersign stores."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("Too long to store: " + "; ".join(self.problems))


class WorkflowBusy(Conflict):
    """A runner is executing a step of this workflow right now; try again in a moment."""


class CompensationFailed(Conflict):
    """A compensation step failed during rollback."""


class ToolNotFound(Invalid):
    """No tool is registered under that name."""


class CallNotReleased(Conflict):
    """The call about to run is not the call a person released; it does not run."""


class DatabaseError(Unavailable):
    """The database refused or failed the operation."""


class TransientError(Unavailable):
    """A temporary failure (a service down, a timeout); trying again later may succeed."""


class LinkError(Invalid):
    """This approval link cannot be used."""


class LinkInvalid(LinkError):
    """This approval link is not valid: it was altered or was not issued by Countersign."""


class LinkExpired(LinkError):
    """This approval link has expired; open the approval in the dashboard instead."""


class LinkUsed(LinkError):
    """This approval link has already been used."""


class ConfigurationError(Unavailable):
    """Countersign is not configured for that."""


class ProviderUnreachable(Unavailable):
    """The model provider did not answer."""


class InvalidLogFilter(Invalid):
    """The execution log filter is invalid."""


class InvalidListFilter(Invalid):
    """A listing's filter names no such value (an unknown status, say)."""


class ChannelError(Unavailable):
    """The notification channel could not deliver the message."""


class NotificationNotFound(NotFound):
    """No notification has that id."""


class AgentProfileNotFound(NotFound):
    """No agent profile has that name."""


class AgentProfileExists(Conflict):
    """An agent profile with that name already exists."""


class InvalidAgentProfile(Invalid):
    """The agent profile is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("The agent profile is invalid: " + "; ".join(self.problems))


class AgentProfileInUse(Conflict):
    """Workflows that are not finished use this agent profile."""


class SessionNotFound(NotFound):
    """No conversation session has that id."""


class FlowNotFound(NotFound):
    """No conversation flow has that name."""


class SessionClosed(Conflict):
    """This conversation is closed; nothing more can be written to it."""


class NotSupervising(Conflict):
    """Only the supervisor who took this conversation over can do that, while it is supervised."""


class AlreadySupervised(Conflict):
    """Another supervisor has already taken this conversation over."""


class AgentUnavailable(Unavailable):
    """The agent could not answer; your message is saved."""


class FlowNotSupported(Invalid):
    """This flow uses tools that wait for a person's approval; conversations cannot run it."""


class InvalidMessage(Invalid):
    """That message cannot be sent."""


class AgentTeamNotFound(NotFound):
    """No agent team has that name."""


class AgentTeamExists(Conflict):
    """An agent team with that name already exists."""


class InvalidAgentTeam(Invalid):
    """The agent team is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("The agent team is invalid: " + "; ".join(self.problems))


class TeamTaskMissing(Invalid):
    """Give the team a task: the text its first member works on."""


class TenantNotFound(NotFound):
    """No tenant has that slug."""


class TenantExists(Conflict):
    """A tenant with that slug already exists."""


class TenantInUse(Conflict):
    """Users, workflows or sessions still belong to this tenant."""


class InvalidTenantSettings(Invalid):
    """The tenant settings are invalid."""

    def __init__(self, problems: list[str], what: str = "tenant settings") -> None:
        self.problems = list(problems)
        super().__init__(f"Invalid {what}: " + "; ".join(self.problems))


class TenantFlowNotFound(NotFound):
    """The tenant has no flow of that name."""


class TenantSecretNotFound(NotFound):
    """The tenant has no secret of that name."""


class SecretsKeyError(ConfigurationError):
    """COUNTERSIGN_SECRETS_KEY is missing or invalid, so tenant secrets cannot be stored or read."""


class SecretUndecryptable(ConfigurationError):
    """A stored tenant secret cannot be decrypted with COUNTERSIGN_SECRETS_KEY; was its old key dropped?"""


class AnswerReplayed(AlreadyVoted):
    """This answer (a Slack click, a webhook delivery, an emailed link) was already used once."""


class AnswerOutdated(ApprovalClosed):
    """This answer was issued for an earlier level (or another call) of the request."""


class TrailBroken(Conflict):
    """The audit trail's hash chain does not hold: an entry was changed, moved or deleted."""


# -- approval policy (core/approvals/standing_rules.py, delegation.py) ------------------------------


class RuleNotFound(NotFound):
    """No standing rule has that id."""


class InvalidRule(Invalid):
    """The standing rule is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("The standing rule is invalid: " + "; ".join(self.problems))


class InvalidDelegation(Invalid):
    """The out-of-office setting is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("The out-of-office setting is invalid: " + "; ".join(self.problems))
