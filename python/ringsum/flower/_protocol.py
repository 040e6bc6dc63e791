"""Names shared by the client mod and the server strategy.

Every ringsum step travels as a Flower message of type ``train`` (as Flower's
own SecAgg+ workflow does): a ClientApp only runs mods around functions it has
registered, and every app registers a ``train`` function, so the mod sees the
message without the user registering anything else. A ConfigRecord under
:data:`RECORD_KEY` says which step it is.
"""

from __future__ import annotations

#: The ConfigRecord key of every ringsum step, in requests and in replies.
RECORD_KEY = "ringsum"

# Keys inside that ConfigRecord.
KEY_STAGE = "stage"
KEY_ROUND = "round"
KEY_FEDERATION = "federation"
KEY_SUBMISSION = "submission"
KEY_SAMPLES = "num-examples"
KEY_ANNOUNCEMENT = "announcement"
#: In an evaluate message: the signed RoundResult envelope (an announcement or
#: a publication) that carries the model to evaluate.
KEY_SIGNED_MODEL = "signed-model"
KEY_SHARES = "shares"
KEY_REQUEST = "request"
KEY_ANSWER = "answer"
KEY_CLIENT_ID = "client-id"
KEY_CLIENT_INDEX = "client-index"
KEY_HOLDER_ID = "holder-id"
KEY_HOLDER_POINT = "holder-point"

# Stages.
STAGE_DISCOVER = "discover"
STAGE_TRAIN = "train"
STAGE_ANSWER = "answer"
STAGE_EVALUATE = "evaluate"

#: The value of ``client-index`` / ``holder-point`` when the node has no such role.
NO_ROLE = -1

#: The only keys a client's reply to a train step may carry.
TRAIN_REPLY_KEYS = frozenset({KEY_STAGE, KEY_SUBMISSION, KEY_SAMPLES})
#: The only keys a holder's reply may carry.
ANSWER_REPLY_KEYS = frozenset({KEY_STAGE, KEY_ANSWER})
#: The only keys a discovery reply may carry.
DISCOVER_REPLY_KEYS = frozenset(
    {
        KEY_STAGE,
        KEY_FEDERATION,
        KEY_CLIENT_ID,
        KEY_CLIENT_INDEX,
        KEY_HOLDER_ID,
        KEY_HOLDER_POINT,
    }
)

# node_config keys read by the mod.
NODE_FEDERATION = "ringsum-federation"
NODE_CLIENT = "ringsum-client"
NODE_HOLDER = "ringsum-holder"
NODE_STATE = "ringsum-state"
NODE_ALLOW_PLAINTEXT = "ringsum-allow-plaintext"
NODE_ALLOW_EVALUATE = "ringsum-allow-evaluate"
NODE_ARRAYS_KEY = "ringsum-arrays-key"
NODE_WEIGHT_KEY = "ringsum-weight-key"

#: Flower's conventions (``FedAvg``'s ``arrayrecord_key`` and ``weighted_by_key``).
DEFAULT_ARRAYS_KEY = "arrays"
DEFAULT_WEIGHT_KEY = "num-examples"

#: In the error reply of a client asked for a round it already submitted for;
#: the strategy recognises a second run of a used federation by it.
ROUND_USED = "already submitted for round"
