"""An outside client of Chorus: Python's grpcio with grpcio-reflection, as a new user (or a GUI
client built on it) would call a service it has never seen. It learns the API by server
reflection, builds the request from the descriptors it was sent, calls with a bearer token,
and reads the rich error details of a refused call. Prints one JSON object per line for the
Rust end-to-end test that runs it (tests/tests/chorus_up.rs).

Usage: outside_client.py HOST:PORT TOKEN
"""

import json
import sys

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> None:
    address, token = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel(address)
    database = ProtoReflectionDescriptorDatabase(channel)
    print(json.dumps({"services": sorted(database.get_services())}))

    pool = DescriptorPool(database)
    service = pool.FindServiceByName("chorus.registry.v1.RegistryService")
    method = service.methods_by_name["ListInfluencers"]
    request_type = message_factory.GetMessageClass(method.input_type)
    response_type = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    reply = call(request_type(page_size=2), metadata=[("authorization", f"Bearer {token}")])
    print(json.dumps({"list": json_format.MessageToDict(reply)}))

    # A refused call: the status and its google.rpc details, decoded by name from the pool.
    try:
        call(request_type(page_size=-1), metadata=[("authorization", f"Bearer {token}")])
        print(json.dumps({"refused": None}))
    except grpc.RpcError as error:
        details = []
        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status_type = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))
                status = status_type.FromString(value)
                for any_detail in status.details:
                    name = any_detail.type_url.rsplit("/", 1)[-1]
                    detail_type = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
                    details.append({name: json_format.MessageToDict(detail_type.FromString(any_detail.value))})
        print(json.dumps({"refused": {"code": error.code().name, "message": error.details(), "details": details}}))


if __name__ == "__main__":
    main()
