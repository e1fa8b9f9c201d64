"""A grpcurl-style client that learns the API from the server alone.

It knows nothing of sessiond's .proto files: every service, method and
message comes from the server's reflection service (v1alpha, which is what
Python's ``grpc_reflection`` speaks) through a
``ProtoReflectionDescriptorDatabase`` behind a ``DescriptorPool``; requests
and responses are built with the protobuf message factory and converted
from and to JSON with ``json_format``.

Usage::

    python tests/python/reflect.py HOST:PORT list [SERVICE]
    python tests/python/reflect.py HOST:PORT describe [SYMBOL]
    python tests/python/reflect.py HOST:PORT call SERVICE/METHOD ['JSON' | @]

``list`` prints the services (or a service's methods), ``describe`` prints a
service, method, message or enum as proto source with its comments, and
``call`` sends one request (JSON from the argument, ``@`` reads it from
stdin; default ``{}``) and prints each response as JSON. For example::

    python tests/python/reflect.py 127.0.0.1:50051 \\
        call sessiond.v1.SessionService/StartSession '{"user":"R41"}'
    python tests/python/reflect.py 127.0.0.1:50051 \\
        call grpc.health.v1.Health/Check '{}'

Like grpcurl, a failed call prints the status code, message and decoded
error details (``google.rpc.ErrorInfo``, ``BadRequest``, ... through
``grpcio-status``) and exits with 64 + the gRPC code; other errors exit 1.
Requires grpcio, grpcio-reflection and protobuf (grpcio-status for the
error details).
"""

import argparse
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

try:  # The standard error-detail types, for decoding error details.
    from google.rpc import error_details_pb2  # noqa: F401  (registers the types)
    from grpc_status import rpc_status
except ImportError:  # pragma: no cover - grpcio-status is optional
    rpc_status = None

FieldType = descriptor_pb2.FieldDescriptorProto
SCALAR_TYPES = {
    FieldType.TYPE_DOUBLE: "double",
    FieldType.TYPE_FLOAT: "float",
    FieldType.TYPE_INT64: "int64",
    FieldType.TYPE_UINT64: "uint64",
    FieldType.TYPE_INT32: "int32",
    FieldType.TYPE_FIXED64: "fixed64",
    FieldType.TYPE_FIXED32: "fixed32",
    FieldType.TYPE_BOOL: "bool",
    FieldType.TYPE_STRING: "string",
    FieldType.TYPE_BYTES: "bytes",
    FieldType.TYPE_UINT32: "uint32",
    FieldType.TYPE_SFIXED32: "sfixed32",
    FieldType.TYPE_SFIXED64: "sfixed64",
    FieldType.TYPE_SINT32: "sint32",
    FieldType.TYPE_SINT64: "sint64",
}

# Field numbers of the descriptor protos, for source-code-info paths.
FILE_MESSAGE_TYPE, FILE_ENUM_TYPE, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED_TYPE, MESSAGE_ENUM_TYPE, MESSAGE_ONEOF = 2, 3, 4, 8
ENUM_VALUE = 2
SERVICE_METHOD = 2


class UsageError(Exception):
    """A request this tool cannot carry out (unknown symbol, bad JSON, ...)."""


# Reflection -----------------------------------------------------------------


class Reflection:
    """The server's schema, fetched on demand over reflection v1alpha."""

    def __init__(self, channel):
        self.database = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def services(self):
        return sorted(self.database.get_services())

    def service(self, name):
        try:
            return self.pool.FindServiceByName(name)
        except (KeyError, grpc.RpcError) as error:
            raise_not_found(error, f"service not found: {name}")

    def method(self, name):
        """A method descriptor for "pkg.Service/Method" or "pkg.Service.Method"."""
        name = name.lstrip(".")
        if "/" in name:
            service_name, _, method_name = name.partition("/")
        else:
            service_name, _, method_name = name.rpartition(".")
        service = self.service(service_name)
        method = service.methods_by_name.get(method_name)
        if method is None:
            raise UsageError(f"service {service_name} has no method {method_name!r}")
        return method

    def file_containing(self, symbol):
        """The FileDescriptorProto (with source info) that defines `symbol`."""
        try:
            return self.database.FindFileContainingSymbol(symbol)
        except (KeyError, grpc.RpcError) as error:
            raise_not_found(error, f"symbol not found: {symbol}")


def raise_not_found(error, message):
    """Turns a reflection lookup's "not found" into a UsageError.

    The protocol answers an unknown symbol with an error_response (the
    database raises KeyError), but some servers (tonic-reflection among them)
    end the stream with a NOT_FOUND status instead. Other errors propagate.
    """
    if isinstance(error, KeyError) or error.code() == grpc.StatusCode.NOT_FOUND:
        raise UsageError(message) from None
    raise error


def message_class(descriptor):
    """The Python class of a message descriptor (old and new protobuf)."""
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


# Rendering descriptors as proto source --------------------------------------


class Renderer:
    """Writes the definitions of one file as proto source, with comments."""

    def __init__(self, file_proto):
        self.file = file_proto
        self.syntax = file_proto.syntax or "proto2"
        self.comments = {
            tuple(location.path): location
            for location in file_proto.source_code_info.location
        }
        self.lines = []

    def text(self):
        return "\n".join(self.lines)

    def comment(self, path, indent):
        location = self.comments.get(tuple(path))
        if location is None or not location.leading_comments:
            return
        for line in location.leading_comments.rstrip("\n").split("\n"):
            self.lines.append(f"{indent}//{line}")

    def trailing(self, path):
        location = self.comments.get(tuple(path))
        if location is None or not location.trailing_comments:
            return ""
        return " //" + location.trailing_comments.strip("\n").replace("\n", " ")

    def service(self, service, path, indent=""):
        self.comment(path, indent)
        self.lines.append(f"{indent}service {service.name} {{")
        for index, method in enumerate(service.method):
            self.method(method, path + [SERVICE_METHOD, index], indent + "  ")
        self.lines.append(f"{indent}}}")

    def method(self, method, path, indent=""):
        self.comment(path, indent)
        request = ("stream " if method.client_streaming else "") + method.input_type
        response = ("stream " if method.server_streaming else "") + method.output_type
        self.lines.append(
            f"{indent}rpc {method.name} ( {request} ) returns ( {response} );"
            + self.trailing(path)
        )

    def enum(self, enum, path, indent=""):
        self.comment(path, indent)
        self.lines.append(f"{indent}enum {enum.name} {{")
        for index, value in enumerate(enum.value):
            value_path = path + [ENUM_VALUE, index]
            self.comment(value_path, indent + "  ")
            self.lines.append(
                f"{indent}  {value.name} = {value.number};" + self.trailing(value_path)
            )
        self.lines.append(f"{indent}}}")

    def message(self, message, path, indent=""):
        self.comment(path, indent)
        self.lines.append(f"{indent}message {message.name} {{")
        inner = indent + "  "
        map_entries = {
            nested.name: nested
            for nested in message.nested_type
            if nested.options.map_entry
        }
        rendered_oneofs = set()
        for index, field in enumerate(message.field):
            in_real_oneof = field.HasField("oneof_index") and not field.proto3_optional
            if not in_real_oneof:
                self.field(message, field, path + [MESSAGE_FIELD, index], inner, map_entries)
                continue
            if field.oneof_index in rendered_oneofs:
                continue
            rendered_oneofs.add(field.oneof_index)
            oneof_path = path + [MESSAGE_ONEOF, field.oneof_index]
            self.comment(oneof_path, inner)
            self.lines.append(f"{inner}oneof {message.oneof_decl[field.oneof_index].name} {{")
            for member_index, member in enumerate(message.field):
                if member.HasField("oneof_index") and member.oneof_index == field.oneof_index:
                    self.field(
                        message,
                        member,
                        path + [MESSAGE_FIELD, member_index],
                        inner + "  ",
                        map_entries,
                        in_oneof=True,
                    )
            self.lines.append(f"{inner}}}")
        for index, nested in enumerate(message.nested_type):
            if not nested.options.map_entry:
                self.message(nested, path + [MESSAGE_NESTED_TYPE, index], inner)
        for index, enum in enumerate(message.enum_type):
            self.enum(enum, path + [MESSAGE_ENUM_TYPE, index], inner)
        reserved = [
            str(r.start) if r.end - 1 == r.start else f"{r.start} to {r.end - 1}"
            for r in message.reserved_range
        ]
        if reserved:
            self.lines.append(f"{inner}reserved {', '.join(reserved)};")
        if message.reserved_name:
            names = ", ".join(json.dumps(name) for name in message.reserved_name)
            self.lines.append(f"{inner}reserved {names};")
        self.lines.append(f"{indent}}}")

    def field(self, message, field, path, indent, map_entries, in_oneof=False):
        self.comment(path, indent)
        entry_name = field.type_name.rsplit(".", 1)[-1]
        if (
            field.label == FieldType.LABEL_REPEATED
            and field.type == FieldType.TYPE_MESSAGE
            and entry_name in map_entries
        ):
            key, value = map_entries[entry_name].field
            declared = f"map<{self.type_of(key)}, {self.type_of(value)}>"
        else:
            declared = self.label_of(field, in_oneof) + self.type_of(field)
        options = []
        if field.HasField("default_value"):
            default = field.default_value
            if field.type in (FieldType.TYPE_STRING, FieldType.TYPE_BYTES):
                default = json.dumps(default)
            options.append(f"default = {default}")
        if field.options.deprecated:
            options.append("deprecated = true")
        suffix = f" [{', '.join(options)}]" if options else ""
        self.lines.append(
            f"{indent}{declared} {field.name} = {field.number}{suffix};" + self.trailing(path)
        )

    def label_of(self, field, in_oneof):
        if in_oneof:
            return ""
        if field.label == FieldType.LABEL_REPEATED:
            return "repeated "
        if field.label == FieldType.LABEL_REQUIRED:
            return "required "
        if field.proto3_optional or self.syntax == "proto2":
            return "optional "
        return ""

    @staticmethod
    def type_of(field):
        if field.type in SCALAR_TYPES:
            return SCALAR_TYPES[field.type]
        return field.type_name


def find_definition(file_proto, symbol):
    """Finds `symbol` in a file: (kind, definition proto, source path)."""
    prefix = f"{file_proto.package}." if file_proto.package else ""
    for index, service in enumerate(file_proto.service):
        path = [FILE_SERVICE, index]
        if prefix + service.name == symbol:
            return "service", service, path
        for method_index, method in enumerate(service.method):
            if f"{prefix}{service.name}.{method.name}" == symbol:
                return "method", method, path + [SERVICE_METHOD, method_index]
    for index, enum in enumerate(file_proto.enum_type):
        if prefix + enum.name == symbol:
            return "enum", enum, [FILE_ENUM_TYPE, index]

    def search(messages, scope, base_path, nested_field):
        for index, message in enumerate(messages):
            name = scope + message.name
            path = base_path + [nested_field, index]
            if name == symbol:
                return "message", message, path
            for enum_index, enum in enumerate(message.enum_type):
                if f"{name}.{enum.name}" == symbol:
                    return "enum", enum, path + [MESSAGE_ENUM_TYPE, enum_index]
            found = search(message.nested_type, name + ".", path, MESSAGE_NESTED_TYPE)
            if found:
                return found
        return None

    found = search(file_proto.message_type, prefix, [], FILE_MESSAGE_TYPE)
    if found:
        return found
    raise UsageError(f"symbol {symbol} is not a service, method, message or enum")


def describe(reflection, symbol):
    """The grpcurl-style description of one symbol."""
    symbol = symbol.lstrip(".").replace("/", ".")
    try:
        file_proto = reflection.file_containing(symbol)
    except UsageError:
        # A method may not be indexed by itself: look up its service.
        parent = symbol.rpartition(".")[0]
        if not parent:
            raise
        try:
            file_proto = reflection.file_containing(parent)
        except UsageError:
            raise UsageError(f"symbol not found: {symbol}") from None
    kind, definition, path = find_definition(file_proto, symbol)
    renderer = Renderer(file_proto)
    getattr(renderer, kind)(definition, path)
    article = "an" if kind == "enum" else "a"
    return f"{symbol} is {article} {kind}:\n{renderer.text()}"


# Commands ---------------------------------------------------------------------


def command_list(reflection, args, out):
    if args.symbol is None:
        for service in reflection.services():
            print(service, file=out)
        return 0
    service = reflection.service(args.symbol.lstrip("."))
    for method in sorted(method.full_name for method in service.methods):
        print(method, file=out)
    return 0


def command_describe(reflection, args, out):
    symbols = [args.symbol] if args.symbol else reflection.services()
    for symbol in symbols:
        print(describe(reflection, symbol), file=out)
    return 0


def to_json(message, args, pool=None):
    kwargs = {"indent": 2}
    if pool is not None:
        kwargs["descriptor_pool"] = pool
    if args is not None and args.emit_defaults:
        try:
            return json_format.MessageToJson(
                message, always_print_fields_with_no_presence=True, **kwargs
            )
        except TypeError:  # protobuf < 5
            return json_format.MessageToJson(
                message, including_default_value_fields=True, **kwargs
            )
    return json_format.MessageToJson(message, **kwargs)


def print_error(error, out):
    """Prints a failed call like grpcurl does; returns the exit status."""
    code = error.code()
    words = code.name.split("_")
    print("ERROR:", file=out)
    print(f"  Code: {''.join(word.capitalize() for word in words)}", file=out)
    print(f"  Message: {error.details()}", file=out)
    status = rpc_status.from_call(error) if rpc_status is not None else None
    if status is not None and status.details:
        print("  Details:", file=out)
        for index, detail in enumerate(status.details, start=1):
            try:
                rendered = json_format.MessageToJson(detail, indent=2)
            except (TypeError, KeyError, json_format.Error):
                rendered = json.dumps({"@type": detail.type_url, "value": "(unknown type)"})
            rendered = rendered.replace("\n", "\n  ")
            print(f"  {index})\t{rendered}", file=out)
    return 64 + code.value[0]


def command_call(reflection, channel, args, out):
    method = reflection.method(args.method)
    if method.client_streaming:
        raise UsageError(f"{method.full_name} is client-streaming; only unary and "
                         "server-streaming methods are supported")
    request_class = message_class(method.input_type)
    response_class = message_class(method.output_type)
    data = args.data
    if data == "@":
        data = sys.stdin.read()
    request = request_class()
    try:
        json_format.Parse(data, request)
    except json_format.ParseError as error:
        raise UsageError(f"invalid JSON for {method.input_type.full_name}: {error}") from None
    path = f"/{method.containing_service.full_name}/{method.name}"
    serializer = request_class.SerializeToString
    deserializer = response_class.FromString
    try:
        if method.server_streaming:
            call = channel.unary_stream(
                path, request_serializer=serializer, response_deserializer=deserializer
            )
            for response in call(request, timeout=args.timeout):
                print(to_json(response, args, reflection.pool), file=out)
        else:
            call = channel.unary_unary(
                path, request_serializer=serializer, response_deserializer=deserializer
            )
            response = call(request, timeout=args.timeout)
            print(to_json(response, args, reflection.pool), file=out)
    except grpc.RpcError as error:
        return print_error(error, out)
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="reflect.py",
        description="A grpcurl-style client over gRPC server reflection (v1alpha).",
    )
    parser.add_argument("endpoint", help="the server, HOST:PORT (plaintext)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="deadline of each call, in seconds"
    )
    parser.add_argument(
        "--emit-defaults",
        action="store_true",
        help="print fields that hold their default value too",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the services, or a service's methods")
    listing.add_argument("symbol", nargs="?", help="a service")
    describing = commands.add_parser(
        "describe", help="a service, method, message or enum as proto source"
    )
    describing.add_argument("symbol", nargs="?", help="a fully qualified name")
    calling = commands.add_parser("call", help="call a method with a JSON request")
    calling.add_argument("method", help="SERVICE/METHOD, e.g. grpc.health.v1.Health/Check")
    calling.add_argument(
        "data", nargs="?", default="{}", help="the request as JSON; @ reads stdin"
    )
    return parser.parse_args(argv)


def main(argv=None, out=sys.stdout):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with grpc.insecure_channel(args.endpoint) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=args.timeout)
        except grpc.FutureTimeoutError:
            print(f"Failed to dial target host {args.endpoint!r}: timed out", file=sys.stderr)
            return 1
        reflection = Reflection(channel)
        try:
            if args.command == "list":
                return command_list(reflection, args, out)
            if args.command == "describe":
                return command_describe(reflection, args, out)
            return command_call(reflection, channel, args, out)
        except UsageError as error:
            print(f"Failed: {error}", file=sys.stderr)
            return 1
        except grpc.RpcError as error:  # the reflection service itself failed
            print(f"Failed to reach the reflection service: {error.code().name} "
                  f"{error.details()}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
