/**
 * The package version, as sent in the fleet report (`client`). A constant rather than a read of
 * package.json: the built package must not depend on where package.json lies at run time, and a unit
 * test keeps the two equal.
 */
export const CLIENT_VERSION = '0.1.0';
