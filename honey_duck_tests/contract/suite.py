"""The whole contract, as the classes a sink's test file subclasses (see `probe.Probe`)."""

from honey_duck_tests.contract.faults import FaultsContract
from honey_duck_tests.contract.landed import LandedContract, ReconcileContract
from honey_duck_tests.contract.modes import ModesContract
from honey_duck_tests.contract.partitions import PartitionsContract
from honey_duck_tests.contract.roundtrip import ReadContract, RoundTripContract
from honey_duck_tests.contract.schema import SchemaContract


class DataContract(
    ModesContract,
    PartitionsContract,
    SchemaContract,
    ReadContract,
    RoundTripContract,
    ReconcileContract,
):
    """What any target keeps, server or not: modes, partitions, schema, reads, round trips,
    reconciliation against native changes."""


class ServerContract(DataContract, FaultsContract):
    """A target behind a server: the data contract and the faults a server brings."""


__all__ = ["DataContract", "LandedContract", "ServerContract"]
