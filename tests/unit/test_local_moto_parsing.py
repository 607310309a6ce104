"""What the local moto server changes in how moto reads a request and writes an SNS envelope changes no answer: the
query parser with its names sorted reads every request as moto's own does, and the envelope's text is the text
`json.dumps(..., sort_keys=True, indent=2)` writes."""

from __future__ import annotations

import json

import botocore.serialize
import botocore.session
from hypothesis import given
from hypothesis import strategies as st
from moto.core.parse import QueryParser
from moto.core.utils import get_service_model
from werkzeug.datastructures import CombinedMultiDict, MultiDict

from accrual_dev.local.moto_messaging import pretty_json
from accrual_dev.local.moto_serial import _query_do_parse, _query_gonna_recurse

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_the_envelope_text_is_the_pretty_json_moto_writes(value):
    assert pretty_json(value) == json.dumps(value, sort_keys=True, indent=2, separators=(",", ": "))


ATTRIBUTE = st.fixed_dictionaries({"DataType": st.just("String"), "StringValue": st.text(min_size=1, max_size=12)})
ENTRY = st.fixed_dictionaries(
    {"Message": st.text(min_size=1, max_size=40)},
    optional={
        "Subject": st.text(min_size=1, max_size=10),
        "MessageAttributes": st.dictionaries(st.sampled_from(["event_type", "user_id", "partner"]), ATTRIBUTE),
        "MessageGroupId": st.text(min_size=1, max_size=5),
    },
)


@given(st.lists(ENTRY, min_size=1, max_size=10))
def test_the_sorted_names_parser_reads_a_publish_batch_as_moto_does(entries):
    model = botocore.session.get_session().get_service_model("sns").operation_model("PublishBatch")
    moto_model = get_service_model("sns").operation_model("PublishBatch")  # the parser reads moto's own models
    params = {
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "PublishBatchRequestEntries": [{"Id": str(number), **entry} for number, entry in enumerate(entries)],
    }
    serialized = botocore.serialize.create_serializer("query").serialize_to_request(params, model)
    form = MultiDict(list(serialized["body"].items()))
    request = {"method": "POST", "values": CombinedMultiDict([MultiDict(), form]), "headers": {}, "body": b""}
    stock = QueryParser(moto_model).parse(request)
    sorted_names = QueryParser(moto_model)
    sorted_names._gonna_recurse = _query_gonna_recurse.__get__(sorted_names)  # type: ignore[method-assign]
    patched = _query_do_parse(sorted_names, request, moto_model.input_shape)
    assert patched == stock
    assert len(patched["PublishBatchRequestEntries"]) == len(entries)
