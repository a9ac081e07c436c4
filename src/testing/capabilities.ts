/** File capabilities (`security.capability` values) for tests. */

/** A v2 file capability: cap_net_bind_service. */
export const CAP_V2 = Buffer.alloc(20)
CAP_V2.writeUInt32LE(0x02000001, 0)
CAP_V2.writeUInt32LE(1 << 10, 4)

/** The same as v3, with a namespace root id (1000). */
export const CAP_V3 = Buffer.alloc(24)
CAP_V3.writeUInt32LE(0x03000001, 0)
CAP_V3.writeUInt32LE(1 << 10, 4)
CAP_V3.writeUInt32LE(1000, 20)
