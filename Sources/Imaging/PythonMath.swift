/// Python's numeric semantics, which Thumbor's transform math depends on.
enum PythonMath {
    /// `round(x)`: half to even, returning an integer.
    static func round(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// `round(x, 2)`: the decimal rounding of the exact binary value of `x` (ties to even), as CPython does.
    static func round2(_ x: Double) -> Double {
        let scaled = x * 100
        let error = fmaRemainder(x, 100, scaled)
        var rounded = scaled.rounded(.toNearestOrEven)
        if abs(scaled - scaled.rounded(.towardZero)) == 0.5 {
            // `scaled` sits exactly on a tie only after rounding; the exact product decides the direction.
            if error > 0 { rounded = scaled.rounded(.up) } else if error < 0 { rounded = scaled.rounded(.down) }
        }
        return rounded / 100
    }

    /// The exact remainder `a*b - p` of a rounded product `p`.
    private static func fmaRemainder(_ a: Double, _ b: Double, _ p: Double) -> Double {
        (-p).addingProduct(a, b)
    }

    /// `a // b` for floats.
    static func floorDivide(_ a: Double, _ b: Double) -> Double { (a / b).rounded(.down) }

    /// `int(x)`: truncation toward zero, saturating instead of trapping.
    static func int(_ x: Double) -> Int {
        if x.isNaN { return 0 }
        if x >= Double(Int.max) { return Int.max }
        if x <= Double(Int.min) { return Int.min }
        return Int(x.rounded(.towardZero))
    }
}
