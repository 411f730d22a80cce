// Helpers any stage may use (a source includes this file by name). fg_size, fg_time and
// fg_frame are uniforms every pass declares (runtime/codegen.py).
ivec2 fg_pixel() { return ivec2(gl_FragCoord.xy); }  // this output pixel
vec2 fg_uv() { return gl_FragCoord.xy / fg_size; }   // its centre in 0..1
