import Testing
import WebhookCore

@Suite("Which provider ids are used as event ids")
struct EventIDTests {
    @Test("blank ids (ASCII or Unicode whitespace), control characters and overlong ids are not used")
    func unusable() {
        for id in ["", " ", "   ", "\u{3000}", " \u{2003}\u{00A0} ", "a\tb", "a\u{7F}", "x\u{85}", "delivery-\u{FFFD}", String(repeating: "i", count: 257)] {
            #expect(EventID.usable(id) == nil, "\(id.unicodeScalars.map { $0.value })")
        }
    }

    @Test("ids with text are used as given, spaces and non-ASCII included")
    func usable() {
        for id in ["evt_1", " a ", "\u{3000}x", "événement", "😀", String(repeating: "i", count: 256)] {
            #expect(EventID.usable(id) == id)
        }
    }
}
