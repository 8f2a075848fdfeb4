import Foundation
import Synchronization
import Testing
import WebhookCrypto

/// HMACs computed by Python's `hmac` module: the reference the tests check libcrypto-based
/// code against, one process for a whole batch.
enum ReferenceHMAC {
    static func codes(_ cases: [(HashAlgorithm, key: [UInt8], message: [UInt8])]) throws -> [[UInt8]] {
        let input = cases.map { "\($0.0.rawValue) \(hex($0.key)) \(hex($0.message))" }.joined(separator: "\n") + "\n"
        let script = """
            import hashlib, hmac, sys
            for line in sys.stdin.read().split("\\n"):
                if line:
                    name, key, message = (line.split(" ") + [""])[:3]
                    print(hmac.new(bytes.fromhex(key), bytes.fromhex(message), getattr(hashlib, name)).hexdigest())
            """
        let output = try run("/usr/bin/python3", ["-c", script], input: Array(input.utf8))
        let codes = String(decoding: output, as: UTF8.self).split(separator: "\n").map { unhex(String($0)) }
        guard codes.count == cases.count else { throw ToolFailure("python3 answered \(codes.count) codes for \(cases.count)") }
        return codes
    }
}

struct ToolFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What `executable` writes to standard output, given `input`.
func run(_ executable: String, _ arguments: [String], input: [UInt8] = []) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    // Written from another thread: a large input and output would otherwise fill both pipes.
    let writer = Thread {
        try? stdin.fileHandleForWriting.write(contentsOf: input)
        try? stdin.fileHandleForWriting.close()
    }
    writer.start()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw ToolFailure("\(executable) exited with \(process.terminationStatus)") }
    return Array(output)
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

func unhex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex, let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex) {
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// The libcrypto wrapper against published vectors and the openssl tool.
@Suite("WebhookCrypto")
struct CryptoTests {
    @Test("SHA-1, SHA-256 and SHA-512 of \"abc\" and of nothing (FIPS 180-4 examples)")
    func digests() {
        #expect(hex(HashAlgorithm.sha1.hash("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(HashAlgorithm.sha256.hash("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            hex(HashAlgorithm.sha512.hash("abc"))
                == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        )
        #expect(hex(HashAlgorithm.sha256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // Fed in pieces, the same digest.
        var context = HashContext(.sha256)
        context.update("a")
        context.update([UInt8(ascii: "b")])
        Array("c".utf8).withUnsafeBytes { context.update($0) }
        #expect(hex(context.finalize()) == hex(HashAlgorithm.sha256.hash("abc")))
    }

    @Test("HMAC: RFC 4231 cases 1, 2 and 6 (a key longer than the block) and RFC 2202 case 2")
    func hmacVectors() {
        let key1 = [UInt8](repeating: 0x0b, count: 20)
        #expect(
            hex(HashAlgorithm.sha256.authenticationCode(for: Array("Hi There".utf8), using: key1))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(
            hex(HashAlgorithm.sha512.authenticationCode(for: Array("Hi There".utf8), using: key1))
                == "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
        )
        let jefe = Array("Jefe".utf8)
        let question = Array("what do ya want for nothing?".utf8)
        #expect(
            hex(HashAlgorithm.sha256.authenticationCode(for: question, using: jefe))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(
            hex(HashAlgorithm.sha1.authenticationCode(for: question, using: jefe)) == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        let long = [UInt8](repeating: 0xaa, count: 131)
        #expect(
            hex(
                HashAlgorithm.sha256.authenticationCode(
                    for: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8), using: long))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        // A prepared key gives the same code every time, from any number of threads.
        let prepared = PreparedHMAC(key: jefe, algorithm: .sha256)
        let codes = (0..<64).map { _ in prepared.authenticationCode(for: question) }
        #expect(Set(codes.map(hex)) == ["5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"])
        let concurrent = Mutex<Set<String>>([])
        DispatchQueue.concurrentPerform(iterations: 200) { _ in
            let code = hex(prepared.authenticationCode(for: question))
            concurrent.withLock { _ = $0.insert(code) }
        }
        #expect(concurrent.withLock { $0 } == ["5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"])
    }

    @Test("constant-time comparison: equal, different, and different lengths")
    func comparison() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(constantTimeEquals([], []))
    }

    @Test("Ed25519: RFC 8032 test 2 signs and verifies; a changed message or signature does not verify")
    func ed25519Vector() throws {
        let seed = unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
        let key = try #require(Ed25519PrivateKey(seed: seed))
        #expect(hex(key.publicKey.rawRepresentation) == "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        let signature = key.signature(for: [0x72])
        #expect(
            hex(signature)
                == "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        )
        let publicKey = try #require(Ed25519PublicKey(rawRepresentation: key.publicKey.rawRepresentation))
        #expect(publicKey.isValidSignature(signature, for: [0x72]))
        #expect(!publicKey.isValidSignature(signature, for: [0x73]))
        var changed = signature
        changed[10] ^= 1
        #expect(!publicKey.isValidSignature(changed, for: [0x72]))
        #expect(!publicKey.isValidSignature(Array(signature.prefix(63)), for: [0x72]))
        #expect(Ed25519PublicKey(rawRepresentation: Array(repeating: 1, count: 31)) == nil)
    }

    @Test("P-256: our signature verifies with the openssl tool, and the tool's with ours; PEM and DER keys read")
    func p256AgainstOpenSSL() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crypto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("key.pem").path
        let publicFile = directory.appendingPathComponent("public.pem").path
        _ = try run("/usr/bin/openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile])
        _ = try run("/usr/bin/openssl", ["ec", "-in", keyFile, "-pubout", "-out", publicFile])
        let privatePEM = try String(contentsOfFile: keyFile, encoding: .utf8)
        let publicPEM = try String(contentsOfFile: publicFile, encoding: .utf8)
        #expect(privatePEM.contains("BEGIN EC PRIVATE KEY"))
        let key = try #require(P256PrivateKey(pemRepresentation: privatePEM))
        let publicKey = try #require(P256PublicKey(pemRepresentation: publicPEM))
        #expect(publicKey.derRepresentation == key.publicKey.derRepresentation)
        #expect(P256PublicKey(derRepresentation: publicKey.derRepresentation) != nil)
        #expect(P256PrivateKey(derRepresentation: key.derRepresentation) != nil)

        let message = Array("1700000000{\"event\":\"delivered\"}".utf8)
        let ours = key.signature(for: message)
        let signatureFile = directory.appendingPathComponent("sig.der").path
        #expect(FileManager.default.createFile(atPath: signatureFile, contents: Data(ours)))
        let verdict = try run(
            "/usr/bin/openssl", ["dgst", "-sha256", "-verify", publicFile, "-signature", signatureFile], input: message)
        #expect(String(decoding: verdict, as: UTF8.self).contains("Verified OK"))

        let theirs = try run("/usr/bin/openssl", ["dgst", "-sha256", "-sign", keyFile], input: message)
        #expect(publicKey.isValidSignature(der: theirs, for: message))
        #expect(!publicKey.isValidSignature(der: theirs, for: message + [0]))
        #expect(!publicKey.isValidSignature(der: [0x30, 0x00], for: message))
    }

    @Test("keys of the wrong kind are refused: P-384 as P-256, RSA of 1024 bits, an encrypted PEM (without a prompt)")
    func wrongKeys() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crypto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func file(_ name: String) -> String { directory.appendingPathComponent(name).path }
        _ = try run("/usr/bin/openssl", ["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", file("p384.pem")])
        _ = try run("/usr/bin/openssl", ["ec", "-in", file("p384.pem"), "-pubout", "-out", file("p384.pub")])
        #expect(P256PrivateKey(pemRepresentation: try String(contentsOfFile: file("p384.pem"), encoding: .utf8)) == nil)
        #expect(P256PublicKey(pemRepresentation: try String(contentsOfFile: file("p384.pub"), encoding: .utf8)) == nil)

        _ = try run("/usr/bin/openssl", ["genrsa", "-out", file("rsa1024.pem"), "1024"])
        let small = try run("/usr/bin/openssl", ["rsa", "-in", file("rsa1024.pem"), "-pubout", "-outform", "DER"])
        #expect(RSAPublicKey(derRepresentation: small) == nil)
        _ = try run("/usr/bin/openssl", ["genrsa", "-out", file("rsa2048.pem"), "2048"])
        let large = try run("/usr/bin/openssl", ["rsa", "-in", file("rsa2048.pem"), "-pubout", "-outform", "DER"])
        let rsa = try #require(RSAPublicKey(derRepresentation: large))
        #expect(RSAPublicKey(derRepresentation: large + [0]) == nil)
        let message = Array("Message\nhello\n".utf8)
        for digest in [HashAlgorithm.sha1, .sha256] {
            let signature = try run(
                "/usr/bin/openssl", ["dgst", "-\(digest.rawValue)", "-sign", file("rsa2048.pem")], input: message)
            #expect(rsa.isValidPKCS1v15Signature(signature, for: message, digest: digest))
            #expect(!rsa.isValidPKCS1v15Signature(signature, for: message, digest: digest == .sha1 ? .sha256 : .sha1))
        }

        let key = P256PrivateKey()
        let plain = file("plain.der")
        #expect(FileManager.default.createFile(atPath: plain, contents: Data(key.derRepresentation)))
        _ = try run(
            "/usr/bin/openssl",
            ["pkcs8", "-topk8", "-inform", "DER", "-in", plain, "-passout", "pass:secret", "-out", file("encrypted.pem")])
        let encrypted = try String(contentsOfFile: file("encrypted.pem"), encoding: .utf8)
        #expect(encrypted.contains("ENCRYPTED"))
        #expect(P256PrivateKey(pemRepresentation: encrypted) == nil)
    }
}
