"""The test suite, a package: tests, bench/ and drills/ import its helpers by package path
(`from tests.warehouse import lakefixtures`)."""
