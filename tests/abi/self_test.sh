#!/bin/sh
# The ABI gate's own test (TAP): tests/abi/check.sh --self-test builds a
# boundary struct and enum changed in every way docs/ABI.md forbids and
# checks that the gate refuses each and accepts appends.
exec "$(dirname "$0")/check.sh" --self-test
